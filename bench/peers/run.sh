#!/usr/bin/env bash
# specbot's webhook intake against a no-op Probot app (bench/peers/probot), same deliveries,
# same load generator (bench/load.mjs, closed loop), one after the other on this machine.
#   bench/peers/run.sh [seconds] [connections...]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"; shift || true
CONNS=("${@:-16 64}"); CONNS=(${CONNS[@]})
cargo build --release --quiet
(cd bench/peers/probot && npm ci --no-audit --no-fund --silent)
DIR="$(mktemp -d)"; PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$DIR"' EXIT
SECRET=peer-secret
ms() { date +%s%3N; }

measure() { # name port
  local name=$1 port=$2 pid=$3
  echo "== $name: idle RSS $(ps -o rss= -p "$pid") KiB"
  for c in "${CONNS[@]}"; do
    node bench/load.mjs closed "http://127.0.0.1:$port/api/github/webhooks" "$SECRET" "$c" "$SECS"
    echo "   RSS after $c connections: $(ps -o rss= -p "$pid") KiB"
  done
}

t=$(ms)
WEBHOOK_SECRET=$SECRET WORKERS=1 HOST=127.0.0.1 PORT=3990 LOG_FORMAT=json RUST_LOG=warn \
  DATABASE_URL="sqlite://$DIR/peer.db" "${CARGO_TARGET_DIR:-target}/release/specbot" serve > "$DIR/specbot.log" 2>&1 &
PIDS+=($!); SPECBOT=$!
until curl -sf http://127.0.0.1:3990/healthz >/dev/null; do sleep 0.01; done
echo "== specbot: first /healthz answer $(( $(ms) - t )) ms after start"
measure specbot 3990 $SPECBOT
kill $SPECBOT

t=$(ms)
(cd bench/peers/probot && APP_ID=1 PRIVATE_KEY_PATH="$PWD/../../../tests/fixtures/test-app-key.pem" \
  WEBHOOK_SECRET=$SECRET HOST=127.0.0.1 PORT=3991 LOG_LEVEL=warn exec node node_modules/probot/bin/probot.js run ./index.js) > "$DIR/probot.log" 2>&1 &
PIDS+=($!); PROBOT=$!
until curl -s -o /dev/null http://127.0.0.1:3991/ 2>/dev/null; do sleep 0.01; done
echo "== probot: first answer $(( $(ms) - t )) ms after start"
measure probot 3991 $PROBOT
