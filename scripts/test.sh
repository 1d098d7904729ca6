#!/usr/bin/env bash
# `npm test`: static checks, then every ava test against real Postgres and
# NATS. Ends with one line "N passed, N failed" (checks and tests together)
# and a non-zero status when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error || exit 1
fi

passed=0
failed=0
check() {
  local name=$1
  shift
  local output
  if output=$("$@" 2>&1); then
    echo "ok - $name"
    passed=$((passed + 1))
  else
    echo "not ok - $name"
    failed=$((failed + 1))
  fi
  [ -n "$output" ] && printf '%s\n' "$output" | head -40 | sed 's/^/  # /'
}

check "buf lint (STANDARD)" node_modules/.bin/buf lint
check "buf breaking against the previous commit" bash scripts/buf-breaking.sh
check "generated code matches proto/" bash scripts/check-generated.sh
check "typecheck (tsc --noEmit)" node_modules/.bin/tsc --noEmit -p .
# Errors only here: the warnings (non-null assertions outside tests) are known and listed by `npm run lint`.
check "lint (biome lint)" npm run --silent lint -- --diagnostic-level=error
check "format (biome format; \`npm run format\` fixes)" npm run --silent format:check
if [ -f deploy/check.sh ]; then
  check "deploy: helm lint/template, Envoy schema validation" bash deploy/check.sh
fi

tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
ava_started=$SECONDS
node_modules/.bin/ava --tap "$@" | tee "$tap"
ava_status=${PIPESTATUS[0]}
ava_passed=$(grep -cE '^ok ' "$tap")
ava_failed=$(grep -cE '^not ok ' "$tap")
passed=$((passed + ava_passed))
failed=$((failed + ava_failed))
# ava failing outside any test (a crash, a file that does not load) still fails the run.
if [ "$ava_status" -ne 0 ] && [ "$ava_failed" -eq 0 ]; then failed=$((failed + 1)); echo "not ok - ava exited with status $ava_status"; fi

echo "# tests took $((SECONDS - ava_started)) s wall; npm test $SECONDS s in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
