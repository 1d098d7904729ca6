import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";
import { startStack, type Stack } from "../support/stack.js";

// The README's "Try it" walkthrough, run as written on a fresh plane: it must
// end with a task in the daemon's hands and the queued action delivered.

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

/** The shell blocks of the README's "Try it" section, in order. */
function tryItScript(): string {
  const readme = readFileSync(`${ROOT}README.md`, "utf8");
  const section = readme.slice(readme.indexOf("## Try it"), readme.indexOf("\n## ", readme.indexOf("## Try it") + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join("\n");
}

test("the README's Try it block runs word for word and ends with a claimed task", async (t) => {
  // About fifteen cpctl processes, each starting Node and tsx.
  t.timeout(180_000);
  const gateway = new URL(stack.gatewayUrl);
  // The only changes: this plane's ports instead of the defaults, and cpctl run directly instead of through npx.
  const script = tryItScript().replaceAll("localhost:8080", `${gateway.hostname}:${gateway.port}`).replaceAll("npx cpctl", `node ${ROOT}bin/cpctl.js`);
  t.true(script.includes("tasks/claim"), "the walkthrough claims a task");
  const { stdout } = await run("bash", ["-euo", "pipefail", "-c", script], {
    cwd: ROOT,
    env: {
      ...process.env,
      REGISTRY_GRPC_ADDR: stack.registryAddr,
      PROFILE_CATALOG_GRPC_ADDR: stack.profilesAddr,
      TASK_QUEUE_GRPC_ADDR: stack.tasksAddr,
      LIVENESS_GRPC_ADDR: stack.livenessAddr,
    },
    timeout: 120_000,
  });
  const claim = stdout.split("\n").find((line) => line.startsWith('{"task":'));
  t.truthy(claim, stdout);
  const task = (JSON.parse(claim!) as { task: { status: string; auth_token: string; agent: { name: string } } | null }).task;
  t.is(task?.status, "dispatched", claim);
  t.regex(task?.auth_token ?? "", /^mat_[0-9a-f]{40}$/);
  t.is(task?.agent.name, "helper");
  t.regex(stdout, /"pending_update":\{"id":"[0-9a-f]{32}","target_version":"1\.2\.3"\}/, "the queued action reached the daemon");
});
