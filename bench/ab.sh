#!/usr/bin/env bash
# Two specbot builds' webhook intake, interleaved so that the machine's drift falls on both:
# for each pair and each connection count, A then B, each on a fresh SQLite database, loaded by
# wrk with the peer benchmark's signed ~2 KB deliveries (bench/load.mjs body).
#   bench/ab.sh A_BIN B_BIN [pairs] [seconds] [connections...]   default: 3 pairs, 10 s, 16 and 64
# Prints one line per run: build, connections, requests/s, p50, p99, non-2xx, and the intake
# writer's mean batch and commit time (from /metrics), the server's CPU time per request, and the share of the machine's time the
# hypervisor gave to others during the run (steal, from /proc/stat).
set -euo pipefail
cd "$(dirname "$0")/.."
A="$1"; B="$2"; PAIRS="${3:-3}"; SECS="${4:-10}"; shift 4 2>/dev/null || shift $#
CONNS=("${@:-16 64}"); CONNS=(${CONNS[@]})
DIR="$(mktemp -d)"; PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$DIR"' EXIT
SECRET=ab-bench-webhook-secret-0123456789abcdef
SIG="$(node bench/load.mjs body "$DIR/body.json" "$SECRET")"
metric() { awk -v m="$1" '$1 == m {print $2}' "$DIR/metrics"; }

run() { # name binary connections
  rm -f "$DIR"/ab.db*
  WEBHOOK_SECRET=$SECRET WORKERS=1 HOST=127.0.0.1 PORT=3993 RUST_LOG=warn \
    DATABASE_URL="sqlite://$DIR/ab.db" "$2" serve > "$DIR/log" 2>&1 &
  PID=$!
  until curl -sf http://127.0.0.1:3993/healthz >/dev/null; do sleep 0.01; done
  local before cpu; before=$(head -1 /proc/stat); cpu=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  INGEST_BODY="$DIR/body.json" INGEST_SIGNATURE="$SIG" \
    wrk -t1 -c"$3" -d"${SECS}s" --latency -s bench/ingest.lua \
    http://127.0.0.1:3993/api/github/webhooks > "$DIR/wrk.out"
  local steal; steal=$(printf '%s\n%s\n' "$before" "$(head -1 /proc/stat)" | awk '
    {t = 0; for (i = 2; i <= NF; i++) t += $i; total[NR] = t; st[NR] = $9}
    END {printf "%.0f", 100 * (st[2] - st[1]) / (total[2] - total[1])}')
  cpu=$(( $(awk '{print $14 + $15}' "/proc/$PID/stat") - cpu ))
  curl -sf http://127.0.0.1:3993/metrics > "$DIR/metrics"
  kill "$PID"; wait "$PID" || true; PID=
  awk -v name="$1" -v c="$3" \
      -v steal="$steal" -v cpu="$cpu" -v hz="$(getconf CLK_TCK)" -v batch="$(metric specbot_intake_batch_size_sum) $(metric specbot_intake_batch_size_count)" \
      -v commit="$(metric specbot_intake_commit_seconds_sum) $(metric specbot_intake_commit_seconds_count)" '
    /Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} /Non-2xx/ {bad=$NF} /requests in/ {n=$1}
    END {split(batch, b, " "); split(commit, k, " ");
         printf "%-2s %3d connections: %9.0f/s, p50 %s, p99 %s, non-2xx %d, batch %.1f, commit %.2f ms, server CPU %.0f us/request, steal %d%%\n",
                name, c, rps, p50, p99, bad, b[1] / b[2], 1000 * k[1] / k[2], 1e6 * cpu / hz / n, steal}' "$DIR/wrk.out"
}

for pair in $(seq 1 "$PAIRS"); do
  for c in "${CONNS[@]}"; do
    run A "$A" "$c"
    run B "$B" "$c"
  done
done
