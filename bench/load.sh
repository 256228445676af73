#!/usr/bin/env bash
# Load on the webhook intake: 1,000 signed deliveries/s for 60 s (open loop), then a burst of
# 10,000 at once, against a release `specbot serve` (SQLite in a temp dir). Checks that every
# delivery was stored exactly once and samples the server's RSS every second.
#   bench/load.sh [rate] [seconds] [burst]
# Exits non-zero unless every delivery was answered 2xx and stored exactly once. SPECBOT_BIN
# names the binary to load (CI uses its debug build at a smaller scale); by default the release
# build, built first.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-1000}"; SECS="${2:-60}"; BURST="${3:-10000}"
if [ -z "${SPECBOT_BIN:-}" ]; then
  cargo build --release --quiet
  SPECBOT_BIN="${CARGO_TARGET_DIR:-target}/release/specbot"
fi
DIR="$(mktemp -d)"; trap 'kill $PID $SAMPLER 2>/dev/null; rm -rf "$DIR"' EXIT
SECRET=load-bench-webhook-secret-0123456789abcdef; PORT=3988
WEBHOOK_SECRET=$SECRET WORKERS=1 HOST=127.0.0.1 PORT=$PORT LOG_FORMAT=json RUST_LOG=warn \
  DATABASE_URL="sqlite://$DIR/load.db" "$SPECBOT_BIN" serve > "$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
echo "idle RSS: $(ps -o rss= -p $PID) KiB"
( while kill -0 $PID 2>/dev/null; do ps -o rss= -p $PID; sleep 1; done ) > "$DIR/rss" &
SAMPLER=$!
URL="http://127.0.0.1:$PORT/api/github/webhooks"
node bench/load.mjs sustained "$URL" "$SECRET" "$RATE" "$SECS" | tee "$DIR/sustained.json"
node bench/load.mjs burst "$URL" "$SECRET" "$BURST" | tee "$DIR/burst.json"
python3 - "$DIR" "$((RATE * SECS + BURST))" <<'PY'
import json, sqlite3, sys
d, sent = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{d}/{r}.json")) for r in ("sustained", "burst")]
n = sqlite3.connect(f"{d}/load.db").execute("SELECT count(*), count(DISTINCT id) FROM deliveries").fetchone()
print(f"stored: {n[0]} rows, {n[1]} distinct delivery ids; sent: {sent}")
bad = [r["mode"] for r in runs if r["ok"] != r["sent"] or r["non2xx"] or r["errors"]]
if bad or n[0] != sent or n[1] != sent:
    sys.exit(f"load: not every delivery was answered 2xx and stored exactly once ({bad})")
PY
echo "max RSS during the run: $(sort -n "$DIR/rss" | tail -1) KiB"
