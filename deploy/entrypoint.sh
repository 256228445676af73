#!/bin/sh
# Container entrypoint: run the command as the unprivileged `specbot` user (uid 10001).
# Fly mounts volumes owned by root, so when started as root this first hands /data to that
# user, then drops privileges; `exec` lets specbot receive SIGTERM directly.
set -eu
if [ "$(id -u)" = "0" ]; then
  if [ -d /data ] && [ "$(stat -c %u /data)" != "10001" ]; then
    chown 10001:10001 /data
  fi
  exec setpriv --reuid=10001 --regid=10001 --clear-groups -- "$@"
fi
exec "$@"
