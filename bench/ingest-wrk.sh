#!/usr/bin/env bash
# Webhook ingest measured from outside the process: `specbot serve` (release, no workers, SQLite
# in a temp dir) loaded by wrk (Debian package `wrk`) with signed ~12 KB deliveries.
#   bench/ingest-wrk.sh [seconds] [connections...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"; shift || true
CONNS=("${@:-16 64}"); CONNS=(${CONNS[@]})
cargo build --release --quiet
DIR="$(mktemp -d)"; trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
SECRET=ingest-bench-webhook-secret-0123456789abcdef
python3 - "$DIR/body.json" <<'PY'
import json, sys
body = {"action": "created",
  "issue": {"id": 1, "number": 7, "title": "Add dark mode", "body": "x" * 11500, "user": {"login": "alice", "id": 1, "type": "User"}, "labels": [], "state": "open"},
  "comment": {"id": 99, "body": "Looks good to me, thanks!", "user": {"login": "alice", "id": 1, "type": "User"}},
  "repository": {"id": 42, "name": "widgets", "full_name": "acme/widgets", "owner": {"login": "acme", "id": 9, "type": "Organization"}, "default_branch": "main", "private": False},
  "sender": {"login": "alice", "id": 1, "type": "User"}, "installation": {"id": 77}}
open(sys.argv[1], "w").write(json.dumps(body))
PY
SIG="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r "$DIR/body.json" | cut -d' ' -f1)"
WEBHOOK_SECRET=$SECRET WORKERS=0 HOST=127.0.0.1 PORT=3987 LOG_FORMAT=json RUST_LOG=warn \
  DATABASE_URL="sqlite://$DIR/bench.db" "${CARGO_TARGET_DIR:-target}/release/specbot" serve > "$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:3987/healthz >/dev/null && break; sleep 0.1; done
for c in "${CONNS[@]}"; do
  echo "== $c connections, ${SECONDS_PER_RUN}s"
  INGEST_BODY="$DIR/body.json" INGEST_SIGNATURE="$SIG" \
    wrk -t2 -c"$c" -d"${SECONDS_PER_RUN}s" --latency -s bench/ingest.lua http://127.0.0.1:3987/api/github/webhooks \
    | grep -E "Requests/sec|Latency|50%|99%|Non-2xx|Socket errors|requests in"
done
echo "RSS after load: $(ps -o rss= -p $PID) KiB"
