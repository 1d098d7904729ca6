import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { ROOT, type K8sObject } from "./helm.js";

let validatorPath: string | undefined;
/** The Go validator of Envoy bootstraps (deploy/envoy/validate), built once and cached. */
function validator(): string {
  validatorPath ??= execFileSync("bash", [`${ROOT}deploy/tools/envoy-validate.sh`], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  return validatorPath;
}

/** Validates Envoy bootstrap text against Envoy's API; answers the problems found (none: valid). */
export function validateEnvoy(text: string): { ok: boolean; output: string } {
  const file = join(mkdtempSync(join(tmpdir(), "envoy-")), "envoy.yaml");
  writeFileSync(file, text);
  const result = spawnSync(validator(), [file], { encoding: "utf8" });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

/** The Envoy bootstrap text inside the chart's Envoy ConfigMap. */
export function envoyConfigText(objects: K8sObject[]): string {
  const map = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.endsWith("-envoy"));
  if (!map?.data?.["envoy.yaml"]) throw new Error("the chart rendered no Envoy ConfigMap");
  return map.data["envoy.yaml"];
}

// biome-ignore lint/suspicious/noExplicitAny: the bootstrap is read as data; its shape is Envoy's, checked by the validator.
export type EnvoyBootstrap = any;

export const parseEnvoy = (text: string): EnvoyBootstrap => parse(text);

/** Every route of every listener, with the listener's name. */
export function routesOf(bootstrap: EnvoyBootstrap): Array<{ listener: string; route: EnvoyBootstrap }> {
  const out: Array<{ listener: string; route: EnvoyBootstrap }> = [];
  for (const listener of bootstrap.static_resources.listeners) {
    for (const chain of listener.filter_chains) {
      for (const filter of chain.filters) {
        for (const host of filter.typed_config.route_config?.virtual_hosts ?? []) {
          for (const route of host.routes) out.push({ listener: listener.name, route });
        }
      }
    }
  }
  return out;
}

/** "28s" -> 28000. */
export const durationMs = (value: string) => {
  const match = /^(\d+(?:\.\d+)?)s$/.exec(value);
  if (!match) throw new Error(`not an Envoy duration: ${value}`);
  return Number(match[1]) * 1000;
};
