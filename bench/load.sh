#!/usr/bin/env bash
# Load on the webhook intake: 1,000 signed deliveries/s for 60 s (open loop), then a burst of
# 10,000 at once, against a release `specbot serve` (SQLite in a temp dir). Checks that every
# delivery was stored exactly once and samples the server's RSS every second.
#   bench/load.sh [rate] [seconds] [burst]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-1000}"; SECS="${2:-60}"; BURST="${3:-10000}"
cargo build --release --quiet
DIR="$(mktemp -d)"; trap 'kill $PID $SAMPLER 2>/dev/null; rm -rf "$DIR"' EXIT
SECRET=load-secret; PORT=3988
WEBHOOK_SECRET=$SECRET WORKERS=1 HOST=127.0.0.1 PORT=$PORT LOG_FORMAT=json RUST_LOG=warn \
  DATABASE_URL="sqlite://$DIR/load.db" "${CARGO_TARGET_DIR:-target}/release/specbot" serve > "$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
echo "idle RSS: $(ps -o rss= -p $PID) KiB"
( while kill -0 $PID 2>/dev/null; do ps -o rss= -p $PID; sleep 1; done ) > "$DIR/rss" &
SAMPLER=$!
URL="http://127.0.0.1:$PORT/api/github/webhooks"
node bench/load.mjs sustained "$URL" "$SECRET" "$RATE" "$SECS"
node bench/load.mjs burst "$URL" "$SECRET" "$BURST"
sleep 1
python3 - "$DIR/load.db" "$((RATE * SECS + BURST))" <<'PY'
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("SELECT count(*), count(DISTINCT id) FROM deliveries").fetchone()
print(f"stored: {n[0]} rows, {n[1]} distinct delivery ids; sent: {sys.argv[2]}")
PY
echo "max RSS during the run: $(sort -n "$DIR/rss" | tail -1) KiB"
