# Sourced: where deploy tools built from source are kept between runs.
# CONTROLPLANE_TOOLS_CACHE overrides it (e.g. a CI cache volume).
TOOLS_CACHE="${CONTROLPLANE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/controlplane-tools}"
mkdir -p "$TOOLS_CACHE"

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "error: Go is needed to build $1 (and it is not on PATH); install Go 1.25+ or put a $1 binary at the path above" >&2
    exit 1
  fi
}
