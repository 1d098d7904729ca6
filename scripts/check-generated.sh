#!/usr/bin/env bash
# Regenerates libs/proto (and the chart's list of retryable RPCs) from proto/
# and fails if the result differs from what is committed: generated code is
# reproducible and never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent gen >/dev/null
generated=(libs/proto deploy/helm/controlplane/files/retryable-rpcs.yaml)
if ! git diff --quiet -- "${generated[@]}" || [ -n "$(git ls-files --others --exclude-standard -- "${generated[@]}")" ]; then
  echo "generated code is not what \`npm run gen\` produces from proto/:"
  git status --short -- "${generated[@]}"
  exit 1
fi
echo "libs/proto and the chart's retryable RPCs are up to date"
