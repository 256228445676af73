#!/usr/bin/env bash
# Crash recovery: how long a job held by a process killed with `kill -9` waits before another
# process claims it again. Each run queues one spec job, starts `specbot serve` (its GitHub
# accepts connections and never answers, so the job stays running, its lease renewed), waits
# until the job is claimed, kills the process with SIGKILL, and then
#   - SQLite (default): starts `specbot serve` again on the same file, and times from that exec
#     to the job's second claim;
#   - Postgres (TAKEOVER_POSTGRES=postgres://user@host:port, a server where it may create
#     databases): a second process is already serving; times from the kill (at a random point
#     of the second process's one-second idle poll) to its claim.
# Leases are an hour long (JOB_LEASE_SECS=3600): without a takeover no claim would come.
# Polls the database every 5 ms, so a time is at most ~5 ms late (plus one query).
#   bench/takeover.sh [runs]     default 10; SPECBOT_BIN names the binary (default: release build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10}"
PORT="${PORT:-3997}"
if [ -z "${SPECBOT_BIN:-}" ]; then
  cargo build --release --quiet
  SPECBOT_BIN="${CARGO_TARGET_DIR:-target}/release/specbot"
fi
DIR="$(mktemp -d)"; PIDS=()
SILENT_PORT=$((PORT + 1))
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

# A "GitHub" that accepts connections and never answers.
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $SILENT_PORT)); s.listen(64); held = []
while True: held.append(s.accept())
" & PIDS+=($!); disown

PAYLOAD='{"kind":"spec","repo":{"installation_id":1,"owner":"acme","name":"widgets","repo_id":42},"issue_number":1,"requested_by":"octocat","trigger":{"via":"label","name":"needs-spec"},"delivery_id":"takeover-bench"}'
INSERT="INSERT INTO jobs (kind, state, payload, attempts, max_attempts, run_at, checkpoint, cancel_requested, created_at, updated_at) VALUES ('spec', 'queued', '$PAYLOAD', 0, 3, 0, 'null', FALSE, 0, 0)"
ATTEMPTS="SELECT attempts FROM jobs WHERE kind = 'spec'"

sql() {  # run one statement on this run's database, print the answer
  if [ -n "${TAKEOVER_POSTGRES:-}" ]; then psql -qtA "$DB_URL" -c "$1"; else sqlite3 "$DB_FILE" "$1"; fi
}

serve() {  # start `specbot serve` on port $1; its pid in $SERVED
  WEBHOOK_SECRET=takeover-bench WORKERS=1 HOST=127.0.0.1 PORT=$1 RUST_LOG=warn \
    JOB_LEASE_SECS=3600 APP_ID=1 PRIVATE_KEY_PATH=tests/fixtures/test-app-key.pem \
    GITHUB_API_URL="http://127.0.0.1:$SILENT_PORT" DATABASE_URL="$DB_URL" \
    "$SPECBOT_BIN" serve >> "$DIR/log" 2>&1 &
  SERVED=$!; PIDS+=("$SERVED")
}

gone() {  # kill -9 the process $1 and wait until it is gone
  kill -9 "$1"; wait "$1" 2>/dev/null || true
}

ready() {  # wait until the process on port $1 (pid $2) answers
  until curl -sf "http://127.0.0.1:$1/healthz" >/dev/null; do
    kill -0 "$2" 2>/dev/null || { cat "$DIR/log" >&2; exit 1; }
    sleep 0.005
  done
}

until_attempts() {  # wait until the job has been claimed $1 times
  until [ "$(sql "$ATTEMPTS")" = "$1" ]; do sleep 0.005; done
}

for run in $(seq "$RUNS"); do
  if [ -n "${TAKEOVER_POSTGRES:-}" ]; then
    name="takeover_bench_$$_$run"
    psql -qtA "$TAKEOVER_POSTGRES/postgres" -c "CREATE DATABASE $name" >/dev/null
    DB_URL="$TAKEOVER_POSTGRES/$name"
  else
    DB_FILE="$DIR/takeover-$run.db"; DB_URL="sqlite://$DB_FILE"
  fi
  serve "$PORT"; first=$SERVED; ready "$PORT" "$first"
  sql "$INSERT" >/dev/null
  until_attempts 1
  if [ -n "${TAKEOVER_POSTGRES:-}" ]; then
    serve $((PORT + 2)); second=$SERVED; ready $((PORT + 2)) "$second"
    # Kill at a random point of the survivor's idle poll (it looks for work every second),
    # not just after its first look.
    sleep "$(awk -v seed="$run$$" 'BEGIN { srand(seed); printf "%.3f", rand() * 1.5 }')"
    t=$(date +%s%N)
    gone "$first"
  else
    gone "$first"
    t=$(date +%s%N)
    serve "$PORT"; second=$SERVED
  fi
  until_attempts 2
  echo $(( ($(date +%s%N) - t) / 1000000 )) >> "$DIR/times"
  gone "$second"
  if [ -n "${TAKEOVER_POSTGRES:-}" ]; then
    psql -qtA "$TAKEOVER_POSTGRES/postgres" -c "DROP DATABASE $name WITH (FORCE)" >/dev/null
  fi
done
sort -n "$DIR/times" | awk '{ms[NR] = $1; printf "%s ms\n", $1}
  END {printf "%d takeovers: min %d ms, median %d ms, max %d ms\n", NR, ms[1], ms[int((NR + 1) / 2)], ms[NR]}'
