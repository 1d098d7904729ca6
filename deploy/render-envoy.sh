#!/usr/bin/env bash
# Writes deploy/envoy/envoy.yaml: the Envoy bootstrap the chart renders with
# its default values (release "controlplane", namespace "controlplane").
# `npm run deploy:envoy` after changing the chart's Envoy template; CI fails
# when the committed file and the chart disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
helm=$(bash deploy/tools/helm.sh)
out=deploy/envoy/envoy.yaml
{
  echo "# Generated from deploy/helm/controlplane (templates/_envoy.tpl) with default values:"
  echo "# do not edit; change the template and run \`npm run deploy:envoy\`."
  "$helm" template controlplane deploy/helm/controlplane --namespace controlplane --kube-version "${KUBE_VERSION:-1.31.0}" \
    --show-only templates/envoy.yaml \
    | node --input-type=module -e '
        import { parseAllDocuments } from "yaml";
        let text = "";
        for await (const chunk of process.stdin) text += chunk;
        const config = parseAllDocuments(text).map((d) => d.toJS()).find((d) => d?.kind === "ConfigMap");
        process.stdout.write(config.data["envoy.yaml"]);
      '
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
