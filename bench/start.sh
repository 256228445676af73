#!/usr/bin/env bash
# Cold start: from exec of `specbot serve` (fresh SQLite database: creating it and running the
# migrations included) to its first `GET /healthz` answer, N times; prints each time and the
# median. Polls every 2 ms, so a time is at most ~2 ms late.
#   bench/start.sh [runs]        default 30; SPECBOT_BIN names the binary (default: release build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-30}"
PORT="${PORT:-3996}"
if [ -z "${SPECBOT_BIN:-}" ]; then
  cargo build --release --quiet
  SPECBOT_BIN="${CARGO_TARGET_DIR:-target}/release/specbot"
fi
DIR="$(mktemp -d)"; PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq "$RUNS"); do
  rm -f "$DIR"/start.db*
  t=$(date +%s%N)
  WEBHOOK_SECRET=start-bench-webhook-secret-0123456789abcdef WORKERS=1 HOST=127.0.0.1 PORT=$PORT RUST_LOG=warn \
    DATABASE_URL="sqlite://$DIR/start.db" "$SPECBOT_BIN" serve > "$DIR/log" 2>&1 &
  PID=$!
  until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do
    kill -0 "$PID" 2>/dev/null || { cat "$DIR/log" >&2; exit 1; }
    sleep 0.002
  done
  echo $(( ($(date +%s%N) - t) / 1000000 ))
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
done | sort -n | awk '{ms[NR] = $1; printf "%s ms\n", $1}
  END {printf "%d starts: min %d ms, median %d ms, max %d ms\n", NR, ms[1], ms[int((NR + 1) / 2)], ms[NR]}'
