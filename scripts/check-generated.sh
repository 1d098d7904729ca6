#!/usr/bin/env bash
# Regenerates libs/proto from proto/ and fails if the result differs from
# what is committed: generated code is reproducible and never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent gen >/dev/null
if ! git diff --quiet -- libs/proto || [ -n "$(git ls-files --others --exclude-standard -- libs/proto)" ]; then
  echo "libs/proto is not what \`npm run gen\` produces from proto/:"
  git status --short -- libs/proto
  exit 1
fi
echo "libs/proto is up to date"
