#!/usr/bin/env bash
# `npm run check`: the static checks `npm test` starts with (buf lint and
# breaking, generated code, typecheck, lint, format, helm lint/template), without the suites.
set -euo pipefail
cd "$(dirname "$0")/.."
node_modules/.bin/buf lint
bash scripts/buf-breaking.sh
bash scripts/check-generated.sh
node_modules/.bin/tsc --noEmit -p .
npm run --silent lint -- --diagnostic-level=error
npm run --silent format:check
bash deploy/check.sh
echo "static checks passed"
