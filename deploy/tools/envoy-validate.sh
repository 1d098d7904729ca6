#!/usr/bin/env bash
# Prints the path of the Envoy config validator (deploy/envoy/validate),
# built once per version of its sources and cached.
set -euo pipefail
source "$(dirname "$0")/cache-dir.sh"
src="$(cd "$(dirname "$0")/../envoy/validate" && pwd)"
hash=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-16)
bin="$TOOLS_CACHE/envoy-validate-$hash"
if [ ! -x "$bin" ]; then
  need_go "the Envoy config validator"
  echo "building the Envoy config validator (once per change of its sources)..." >&2
  if ! (cd "$src" && GOFLAGS=-buildvcs=false go build -o "$bin.tmp" . >&2); then
    echo "error: could not build deploy/envoy/validate (is the Go module proxy reachable?)" >&2
    exit 1
  fi
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
