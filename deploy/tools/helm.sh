#!/usr/bin/env bash
# Prints the path of a pinned helm binary, building it once with
# `go install` (Helm is not packaged for npm or Debian here) and caching it.
set -euo pipefail
HELM_VERSION=v3.22.0
source "$(dirname "$0")/cache-dir.sh"
bin="$TOOLS_CACHE/helm-$HELM_VERSION/helm"
if [ ! -x "$bin" ]; then
  need_go "helm $HELM_VERSION"
  echo "building helm $HELM_VERSION into $(dirname "$bin") (once; a few minutes)..." >&2
  if ! GOBIN="$(dirname "$bin")" GOFLAGS=-buildvcs=false go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2; then
    echo "error: could not build helm $HELM_VERSION with go install (is the Go module proxy reachable?)" >&2
    exit 1
  fi
fi
"$bin" version --short >/dev/null || { echo "error: $bin does not run" >&2; exit 1; }
echo "$bin"
