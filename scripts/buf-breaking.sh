#!/usr/bin/env bash
# buf breaking (FILE rules) of proto/ against the previous commit.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse -q --verify 'HEAD~1^{commit}' >/dev/null 2>&1; then
  echo "note: no previous commit in this clone; nothing to compare against"
  exit 0
fi
if ! git cat-file -e 'HEAD~1:proto' 2>/dev/null; then
  echo "note: the previous commit has no proto/; nothing to compare against"
  exit 0
fi
node_modules/.bin/buf breaking --against '.git#ref=HEAD~1,subdir=proto'
echo "no breaking change against $(git rev-parse --short HEAD~1)"
