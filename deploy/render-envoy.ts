/**
 * Writes deploy/envoy/envoy.yaml: the Envoy bootstrap the chart renders with
 * its default values (release and namespace "controlplane"). Run with
 * `npm run deploy:envoy` after changing the chart's Envoy template; CI fails
 * when the committed file and the chart disagree (deploy/test/envoy.test.ts).
 */
import { writeFileSync } from "node:fs";
import { envoyConfigText } from "./test/support/envoy.js";
import { render, ROOT } from "./test/support/helm.js";

const HEADER = [
  "# Generated from deploy/helm/controlplane (templates/_envoy.tpl) with default values:",
  "# do not edit; change the template and run `npm run deploy:envoy`.",
];
const out = `${ROOT}deploy/envoy/envoy.yaml`;
writeFileSync(out, `${HEADER.join("\n")}\n${envoyConfigText(render())}`);
console.log("wrote deploy/envoy/envoy.yaml");
