#!/usr/bin/env bash
# Runs the TypeScript example against a live `shoal serve` on a fresh SQLite
# database: builds the server, starts it with a first admin (and with
# SHOAL_WEBHOOK_ALLOW_PRIVATE=1: the example's webhook receiver listens on
# 127.0.0.1), regenerates the typed client from ../../openapi.yaml, compiles
# the example and runs it.
# Used by CI (`make example-ts`); needs Go, Node 20 and npm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "example-ts: building shoal"
(cd "$root" && go build -o "$work/shoal" ./cmd/shoal)

port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
export SHOAL_URL="http://127.0.0.1:$port"
export SHOAL_ADMIN_EMAIL="admin@example.com"
export SHOAL_ADMIN_PASSWORD="example-admin-$(date +%s)-passphrase"

echo "example-ts: starting shoal on $SHOAL_URL"
SHOAL_ADDR="127.0.0.1:$port" SHOAL_DATABASE_URL="sqlite:$work/shoal.db" SHOAL_LOG_LEVEL=warn \
  SHOAL_WEBHOOK_ALLOW_PRIVATE=1 \
  "$work/shoal" serve >"$work/server.log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 1 600); do
  if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$SHOAL_URL/readyz"; then ready=1; break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "example-ts: the server did not become ready"; cat "$work/server.log"; exit 1
fi

cd "$here"
npm ci --no-audit --no-fund --loglevel=error
npm run -s gen
npm run -s build
if ! npm run -s start; then
  echo "example-ts: the example failed; server log:"; cat "$work/server.log"; exit 1
fi
