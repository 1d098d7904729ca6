import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const CHART = `${ROOT}deploy/helm/controlplane`;
export const PRODUCTION_VALUES = `${ROOT}deploy/helm/values-production.yaml`;
/** The Kubernetes version templates are rendered for (the chart needs 1.27+). */
export const KUBE_VERSION = "1.31.0";
export const RELEASE = "controlplane";
export const NAMESPACE = "controlplane";

/** A rendered Kubernetes object, loosely typed: the tests read it as data. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: objects differ by kind; each test narrows what it reads.
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

let helmPath: string | undefined;
/** The pinned helm binary (built once from source and cached by deploy/tools/helm.sh); fails loudly when it cannot be had. */
export function helm(): string {
  helmPath ??= execFileSync("bash", [`${ROOT}deploy/tools/helm.sh`], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  return helmPath;
}

/** Runs `helm template` and answers its exit status and output, without throwing. */
export function template(valuesFiles: string[] = [], set: string[] = []) {
  const args = ["template", RELEASE, CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION];
  for (const file of valuesFiles) args.push("-f", file);
  for (const pair of set) args.push("--set", pair);
  const result = spawnSync(helm(), args, { encoding: "utf8" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Every object the chart renders with these values. */
export function render(valuesFiles: string[] = [], set: string[] = []): K8sObject[] {
  const result = template(valuesFiles, set);
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((doc): doc is K8sObject => doc !== null);
}

/** The value sets every rule is checked against. */
export const VALUE_SETS: Array<{ name: string; files: string[] }> = [
  { name: "default values", files: [] },
  { name: "production values", files: [PRODUCTION_VALUES] },
];

export const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
