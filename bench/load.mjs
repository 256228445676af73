// Load generator for specbot's webhook intake (Node 20, no dependencies).
//
//   node bench/load.mjs sustained URL SECRET RATE SECONDS   open loop: RATE deliveries/s
//   node bench/load.mjs burst URL SECRET COUNT              COUNT deliveries started at once
//   node bench/load.mjs closed URL SECRET CONNS SECONDS     CONNS loops, each one request at a time
//   node bench/load.mjs body FILE SECRET                     write the body to FILE, print its signature
//
// Every delivery is a signed ~2 KB `issue_comment` (no command) with its own X-GitHub-Delivery
// id, so "stored exactly once" can be checked by counting rows afterwards. Prints one JSON line.
import http from "node:http";
import crypto from "node:crypto";

const [mode, url, secret, a, b] = process.argv.slice(2);
const body = JSON.stringify({
  action: "created",
  issue: { id: 1, number: 7, title: "Add dark mode", body: "x".repeat(1500), user: { login: "alice", id: 1, type: "User" }, labels: [], state: "open" },
  comment: { id: 99, body: "Looks good to me, thanks!", user: { login: "alice", id: 1, type: "User" } },
  repository: { id: 42, name: "widgets", full_name: "acme/widgets", owner: { login: "acme", id: 9, type: "Organization" }, default_branch: "main", private: false },
  sender: { login: "alice", id: 1, type: "User" },
  installation: { id: 77 },
});
const signature = "sha256=" + crypto.createHmac("sha256", secret).update(body).digest("hex");
if (mode === "body") {
  // For other load tools (bench/peers/run.sh hands it to wrk): here `url` is the file to write.
  const { writeFileSync } = await import("node:fs");
  writeFileSync(url, body);
  console.log(signature);
  process.exit(0);
}
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const run = crypto.randomUUID();

const latencies = [];
let ok = 0, non2xx = 0, errors = 0, sent = 0;

function deliver(n) {
  sent++;
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.request({
      agent, method: "POST", hostname: target.hostname, port: target.port, path: target.pathname,
      headers: {
        "content-type": "application/json", "content-length": Buffer.byteLength(body),
        "x-github-event": "issue_comment", "x-github-delivery": `${run}-${n}`,
        "x-hub-signature-256": signature,
      },
    }, (res) => {
      res.resume();
      res.on("end", () => {
        latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
        if (res.statusCode >= 200 && res.statusCode < 300) ok++; else non2xx++;
        resolve();
      });
    });
    req.on("error", () => { errors++; resolve(); });
    req.end(body);
  });
}

function report(extra) {
  latencies.sort((x, y) => x - y);
  const q = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null;
  console.log(JSON.stringify({ mode, sent, ok, non2xx, errors,
    p50_ms: q(0.5), p99_ms: q(0.99), max_ms: latencies.at(-1) ?? null, ...extra }));
}

if (mode === "sustained") {
  const rate = Number(a), seconds = Number(b);
  const total = rate * seconds;
  const pending = [];
  const t0 = performance.now();
  let n = 0;
  // Open loop: each tick sends what the clock says is due, whatever the answers do.
  await new Promise((done) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      while (n < due) pending.push(deliver(n++));
      if (n >= total) { clearInterval(tick); done(); }
    }, 5);
  });
  const sendSecs = (performance.now() - t0) / 1000;
  await Promise.all(pending);
  report({ target_rate: rate, seconds: sendSecs, achieved_rate: sent / sendSecs });
} else if (mode === "burst") {
  const count = Number(a);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: count }, (_, i) => deliver(i)));
  const secs = (performance.now() - t0) / 1000;
  report({ seconds: secs, rate: count / secs });
} else if (mode === "closed") {
  const conns = Number(a), seconds = Number(b);
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conns }, async () => {
    while (performance.now() < end) await deliver(n++);
  }));
  const secs = (performance.now() - t0) / 1000;
  report({ connections: conns, seconds: secs, rate: sent / secs });
} else {
  console.error("usage: load.mjs sustained URL SECRET RATE SECONDS | burst URL SECRET COUNT | closed URL SECRET CONNS SECONDS | body FILE SECRET");
  process.exit(2);
}
agent.destroy();
