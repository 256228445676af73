#!/usr/bin/env python3
"""How much a rate of disk syncs pauses this machine, with nothing of specbot's running.

    bench/pauses.py [seconds] [syncs/s ...]     default: 5 s at 0 250 1000 2000 4000 and "max"

For each rate, one process writes 8 KiB and `fdatasync`s it at that rate (a ring of 64 MiB in a
temporary file, overwritten in place, like a reused SQLite WAL), while another spins reading the
clock and counts the gaps over 1 ms in which it did not run: time the hypervisor takes from the
whole machine shows up here, whatever the guest's scheduler does. Rate 0 is the meter alone;
"max" syncs as fast as the disk allows. The ring lives in a temporary directory under
$PAUSES_DIR (default: the current directory), so point that at the disk the database uses.
"""

import multiprocessing as mp
import os
import sys
import tempfile
import time


def meter(seconds, out):
    now = time.perf_counter_ns
    end = now() + int(seconds * 1e9)
    last = now()
    gaps = []
    while last < end:
        t = now()
        if t - last > 1_000_000:
            gaps.append(t - last)
        last = t
    out.put(gaps)


def syncer(seconds, rate, path, out):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    buf = b"x" * 8192
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        os.pwrite(fd, buf, (n * len(buf)) % (64 << 20))
        os.fdatasync(fd)
        n += 1
        if rate:
            due = start + n / rate
            while time.perf_counter() < due:  # spin, as a busy server's threads would
                pass
    os.close(fd)
    out.put(n / seconds)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    rates = sys.argv[2:] or ["0", "250", "1000", "2000", "4000", "max"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("PAUSES_DIR", ".")) as tmp:
        for rate in rates:
            gaps_q, rate_q = mp.Queue(), mp.Queue()
            procs = [mp.Process(target=meter, args=(seconds, gaps_q))]
            if rate != "0":
                r = 0 if rate == "max" else float(rate)
                procs.append(mp.Process(target=syncer, args=(seconds, r, f"{tmp}/ring", rate_q)))
            for p in procs:
                p.start()
            gaps = gaps_q.get()
            achieved = rate_q.get() if rate != "0" else 0
            for p in procs:
                p.join()
            stalled = sum(gaps) / 1e6
            print(
                f"{achieved:7.0f} syncs/s: {len(gaps):4d} pauses over 1 ms, "
                f"{stalled:7.1f} ms paused in {seconds:.0f} s ({100 * stalled / 1000 / seconds:4.1f} %), "
                f"longest {max(gaps, default=0) / 1e6:5.1f} ms"
            )


if __name__ == "__main__":
    main()
