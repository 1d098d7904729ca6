#!/usr/bin/env bash
# Deploy checks of `npm test` (before the ava suites in deploy/test, which
# validate every rendered object and the Envoy configs in depth):
# helm lint --strict and helm template with the default and the
# production-like values. Helm is built once from source and cached.
set -euo pipefail
cd "$(dirname "$0")/.."
helm=$(bash deploy/tools/helm.sh)
chart=deploy/helm/controlplane
# A helm built with `go install` assumes Kubernetes 1.20 (its release builds
# stamp a newer one); the chart needs 1.27+, so the version is always given.
kube=(--kube-version "${KUBE_VERSION:-1.31.0}")
for values in "" deploy/helm/values-production.yaml; do
  args=("${kube[@]}")
  [ -n "$values" ] && args+=(-f "$values")
  "$helm" lint --strict "$chart" "${args[@]}" >/dev/null
  "$helm" template controlplane "$chart" --namespace controlplane "${args[@]}" >/dev/null
  echo "helm lint and template: ${values:-default values} ok"
done
