#!/usr/bin/env bash
# `npm start`: install if needed, then run every service and the gateway in one
# process (database created and migrated at start).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing dependencies (npm ci)..." >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
exec node --import tsx tools/all-in-one/src/main.ts
