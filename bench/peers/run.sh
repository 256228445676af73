#!/usr/bin/env bash
# specbot's webhook intake against a no-op Probot app (bench/peers/probot): the same signed ~2 KB
# deliveries (bench/load.mjs's body), the same load tool, one server after the other.
#   bench/peers/run.sh [seconds] [connections...]      default: 10 s at 16 and 64 connections
# LOADGEN=wrk (default when wrk is installed; Debian package `wrk`) or LOADGEN=node
# (bench/load.mjs closed; costs the machine ~3x more CPU per request than wrk). SPECBOT_BIN names
# the binary to load; by default the release build, built first. SYNCHRONOUS=normal relaxes
# specbot's SQLite writer from its default (full: fsync before every acknowledgement). Fails unless every 2xx answer
# from specbot left exactly one stored delivery.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"; shift || true
CONNS=("${@:-16 64}"); CONNS=(${CONNS[@]})
LOADGEN="${LOADGEN:-$(command -v wrk >/dev/null && echo wrk || echo node)}"
if [ -z "${SPECBOT_BIN:-}" ]; then
  cargo build --release --quiet
  SPECBOT_BIN="${CARGO_TARGET_DIR:-target}/release/specbot"
fi
(cd bench/peers/probot && npm ci --no-audit --no-fund --silent)
DIR="$(mktemp -d)"; PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$DIR"' EXIT
SECRET=peer-bench-webhook-secret-0123456789abcdef
SIG="$(node bench/load.mjs body "$DIR/body.json" "$SECRET")"
ms() { date +%s%3N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The share of the machine's time the hypervisor gave to other guests since the /proc/stat
# line $1: on a shared host it is the first suspect when one run is much slower than the next.
steal() {
  printf '%s\n%s\n' "$1" "$(head -1 /proc/stat)" | awk '
    {t = 0; for (i = 2; i <= NF; i++) t += $i; total[NR] = t; st[NR] = $9}
    END {printf "%.0f", 100 * (st[2] - st[1]) / (total[2] - total[1])}'
}

load() { # port connections → one line: requests/s, p50, p99, non-2xx, errors
  local url="http://127.0.0.1:$1/api/github/webhooks"
  if [ "$LOADGEN" = wrk ]; then
    INGEST_BODY="$DIR/body.json" INGEST_SIGNATURE="$SIG" \
      wrk -t1 -c"$2" -d"${SECS}s" --latency -s bench/ingest.lua "$url" > "$DIR/wrk.out"
    awk '/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2}
         /requests in/ {n=$1} /Non-2xx/ {bad=$NF} /Socket errors/ {err=$0}
         END {printf "%s requests, %s/s, p50 %s, p99 %s, non-2xx %d%s\n", n, rps, p50, p99, bad, (err ? ", " err : "")}' "$DIR/wrk.out"
    awk '/requests in/ {n=$1} /Non-2xx/ {bad=$NF} END {print n - bad}' "$DIR/wrk.out" >> "$DIR/ok"
  else
    node bench/load.mjs closed "$url" "$SECRET" "$2" "$SECS" | tee "$DIR/node.out"
    node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).ok)' "$DIR/node.out" >> "$DIR/ok"
  fi
}

measure() { # name port pid
  local name=$1 port=$2 pid=$3 ticks
  echo "== $name: idle RSS $(ps -o rss= -p "$pid") KiB"
  : > "$DIR/ok"
  for c in "${CONNS[@]}"; do
    ticks=$(cpu_ticks "$pid"); machine=$(head -1 /proc/stat)
    echo -n "   $c connections ($LOADGEN): "; load "$port" "$c"
    echo "   server CPU $(( ($(cpu_ticks "$pid") - ticks) * 100 / $(getconf CLK_TCK) / SECS ))% of one core; RSS after $(ps -o rss= -p "$pid") KiB; steal $(steal "$machine")%"
  done
}

t=$(ms)
WEBHOOK_SECRET=$SECRET WORKERS=1 HOST=127.0.0.1 PORT=3990 LOG_FORMAT=json RUST_LOG=warn \
  DATABASE_URL="sqlite://$DIR/peer.db?synchronous=${SYNCHRONOUS:-full}" "$SPECBOT_BIN" serve > "$DIR/specbot.log" 2>&1 &
PIDS+=($!); SPECBOT=$!
until curl -sf http://127.0.0.1:3990/healthz >/dev/null; do sleep 0.01; done
echo "== specbot: first /healthz answer $(( $(ms) - t )) ms after start"
measure specbot 3990 $SPECBOT
kill $SPECBOT; wait $SPECBOT || true
answered=$(awk '{s += $1} END {print s}' "$DIR/ok")
read -r rows distinct < <(sqlite3 -separator ' ' "$DIR/peer.db" "SELECT count(*), count(DISTINCT id) FROM deliveries")
# The load tool stops counting at the deadline; a request still in flight then may be stored
# without being counted, so up to one per connection more can be stored than counted.
inflight=$(( $(IFS=+; echo "${CONNS[*]}") ))
echo "   specbot: $answered deliveries answered 2xx and counted; $rows rows stored, $distinct distinct ids"
if [ "$rows" != "$distinct" ] || [ "$rows" -lt "$answered" ] || [ "$rows" -gt $((answered + inflight)) ]; then
  echo "specbot did not store every acknowledged delivery exactly once" >&2; exit 1
fi

t=$(ms)
(cd bench/peers/probot && APP_ID=1 PRIVATE_KEY_PATH="$PWD/../../../tests/fixtures/test-app-key.pem" \
  WEBHOOK_SECRET=$SECRET HOST=127.0.0.1 PORT=3991 LOG_LEVEL=warn exec node node_modules/probot/bin/probot.js run ./index.js) > "$DIR/probot.log" 2>&1 &
PIDS+=($!); PROBOT=$!
until curl -s -o /dev/null http://127.0.0.1:3991/ 2>/dev/null; do sleep 0.01; done
echo "== probot: first answer $(( $(ms) - t )) ms after start"
measure probot 3991 $PROBOT
