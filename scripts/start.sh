#!/usr/bin/env bash
# `npm start`: install if needed, then run every service and the gateway in one
# process (database created and migrated at start).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing dependencies (npm ci)..." >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
# A larger young generation: the all-in-one allocates briskly per request,
# and GC was 7% of its CPU per task cycle in the profile; with 32 MiB
# semi-spaces it spent up to 13% less CPU per cycle (see README,
# Performance). Services deployed alone keep Node's default (memory limits).
exec node --max-semi-space-size=32 --import tsx tools/all-in-one/src/main.ts
