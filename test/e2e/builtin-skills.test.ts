import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";
import { createClient, status, type PromiseClient } from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { TaskQueueServiceService, type BuiltinSkill } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { loadTaskQueueConfig } from "@controlplane/task-queue/config";
import { startTaskQueue, type RunningTaskQueue } from "@controlplane/task-queue";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

// The built-in skill set is one for the whole task queue: this file has a stack of its own.
let stack: Stack;
/** A second task-queue replica on the same database, to show a new set reaches every replica. */
let replica: RunningTaskQueue;
let replicaClient: PromiseClient<typeof TaskQueueServiceService>;
test.before(async () => {
  stack = await startStack();
  replica = await startTaskQueue(loadTaskQueueConfig({ ...stack.env, TASK_QUEUE_GRPC_PORT: "0" }), createLogger("replica", stack.env.LOG_LEVEL));
  replicaClient = createClient(TaskQueueServiceService, `127.0.0.1:${replica.port}`);
});
test.after.always(async () => {
  replicaClient?.close();
  await replica?.stop();
  await stack?.stop();
});

type Skill = { id: string; name: string; description?: string; content: string; files?: Array<{ path: string; content: string }> };

async function setup() {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const own = { id: randomUUID(), name: "review", description: "how we review", content: "Review carefully.", files: [] };
  const agentId = await seedAgent(stack, ws, runtimeId, { skills: [own] });
  /** Queues a task and claims it through the gateway; the answer's agent skills. */
  const claimSkills = async () => {
    await enqueue(stack, agentId);
    const answer = await claimOverHttp(stack, ws.member.pat, runtimeId);
    if (answer.status !== 200) throw new Error(`claim: ${answer.status} ${answer.text}`);
    return { skills: (answer.json as { task: { agent: { skills: Skill[] } } }).task.agent.skills, text: answer.text };
  };
  return { ws, runtimeId, agentId, own, claimSkills };
}

const skill = (name: string, extra: Partial<BuiltinSkill> = {}): BuiltinSkill => ({ name, description: "", content: `# ${name}`, files: [], ...extra });

test.serial('claims carry the agent\'s skills then the built-in ones (id ""); a new version reaches every replica', async (t) => {
  const { own, claimSkills, ws, runtimeId, agentId } = await setup();
  const ownJson = { id: own.id, name: "review", description: "how we review", content: "Review carefully." };

  // None registered: only the agent's own.
  t.like(await stack.tasks.getBuiltinSkills({}), { version: 0, skills: [], updatedAt: undefined });
  t.deepEqual((await claimSkills()).skills, [ownJson]);

  const v1 = [
    skill("multica-issues", { description: "Work on issues", files: [{ path: "references/cli.md", content: "multica issue list" }] }),
    skill("multica-chat"),
  ];
  t.deepEqual(await stack.tasks.setBuiltinSkills({ version: 1, skills: v1 }), { replaced: true, storedVersion: 1 });
  const first = await claimSkills();
  t.deepEqual(first.skills, [
    ownJson,
    {
      id: "",
      name: "multica-issues",
      description: "Work on issues",
      content: "# multica-issues",
      files: [{ path: "references/cli.md", content: "multica issue list" }],
    },
    { id: "", name: "multica-chat", content: "# multica-chat" },
  ]);
  t.true(
    first.text.includes(
      `"instructions":"Write good code.","skills":[{"id":"${own.id}","name":"review","description":"how we review","content":"Review carefully."},{"id":"","name":"multica-issues"`,
    ),
  );

  // Version 2 registered through the other replica; the gateway's replica picks it up at its next claim.
  t.deepEqual(await replicaClient.setBuiltinSkills({ version: 2, skills: [skill("multica-v2")] }), { replaced: true, storedVersion: 2 });
  t.deepEqual(
    (await claimSkills()).skills.map((s) => s.name),
    ["review", "multica-v2"],
  );
  // An older or equal version changes nothing (a product replica of the previous release).
  t.deepEqual(await stack.tasks.setBuiltinSkills({ version: 1, skills: v1 }), { replaced: false, storedVersion: 2 });
  t.deepEqual(await replicaClient.setBuiltinSkills({ version: 2, skills: v1 }), { replaced: false, storedVersion: 2 });
  t.deepEqual(
    (await claimSkills()).skills.map((s) => s.name),
    ["review", "multica-v2"],
  );

  // The other replica hands them out too.
  await enqueue(stack, agentId);
  const { claimed } = await replicaClient.claimTask({ runtimeId, waitMs: 0 });
  t.deepEqual(
    claimed!.agent!.skills.map((s) => [s.id, s.name]),
    [
      [own.id, "review"],
      ["", "multica-v2"],
    ],
  );
  t.is(claimed!.workspaceId, ws.workspaceId);
  const stored = await stack.tasks.getBuiltinSkills({});
  t.is(stored.version, 2);
  t.truthy(stored.updatedAt);
});

test.serial('an agent without skills gets "skills":[] only while no built-in set has any', async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  const current = await stack.tasks.getBuiltinSkills({});
  await stack.tasks.setBuiltinSkills({ version: current.version + 1, skills: [] });
  await enqueue(stack, agentId);
  const empty = await claimOverHttp(stack, ws.member.pat, runtimeId);
  t.true(empty.text.includes('"instructions":"Write good code.","skills":[],"custom_env"'), empty.text);
  await stack.tasks.setBuiltinSkills({ version: current.version + 2, skills: [skill("multica-x")] });
  await enqueue(stack, agentId);
  const one = await claimOverHttp(stack, ws.member.pat, runtimeId);
  t.true(one.text.includes('"skills":[{"id":"","name":"multica-x","content":"# multica-x"}],"custom_env"'), one.text);
});

test.serial("a set out of bounds is refused whole", async (t) => {
  const before = await stack.tasks.getBuiltinSkills({});
  const version = before.version + 100;
  const cases: Array<[number, BuiltinSkill[], string]> = [
    [0, [], "version must be a positive integer"],
    [-3, [], "version must be a positive integer"],
    [version, [skill("")], "skills[0].name is required"],
    [version, [skill("a"), skill("a")], 'skills[1].name "a" appears twice'],
    [version, [skill("x".repeat(256))], "skills[0].name too long"],
    [version, [skill("a", { files: [{ path: "", content: "" }] })], "skills[0].files[0].path is required"],
    [version, Array.from({ length: 101 }, (_, i) => skill(`s${i}`)), "at most 100 built-in skills"],
    [version, [skill("big", { content: "x".repeat(4 * 1024 * 1024 + 1) })], "built-in skills too large"],
  ];
  for (const [v, skills, details] of cases) {
    const error = await t.throwsAsync(stack.tasks.setBuiltinSkills({ version: v, skills }));
    t.like(error as object, { code: status.INVALID_ARGUMENT, details }, details);
  }
  t.is((await stack.tasks.getBuiltinSkills({})).version, before.version, "nothing stored");
});

test.serial("cpctl loads a built-in skill set from a JSON file and shows it", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "builtin-skills-"));
  const file = join(dir, "skills.json");
  const version = (await stack.tasks.getBuiltinSkills({})).version + 1;
  await writeFile(file, JSON.stringify({ version, skills: [{ name: "multica-cli", content: "Use the CLI.", files: [{ path: "a.md", content: "A" }] }] }));
  t.deepEqual(await cpctl("task", "builtin-skills", "set", file), { replaced: true, storedVersion: version });
  t.deepEqual(await cpctl("task", "builtin-skills", "set", file), { replaced: false, storedVersion: version });
  const shown = (await cpctl("task", "builtin-skills", "show")) as { version: number; skills: Array<{ name: string; files: unknown[] }> };
  t.is(shown.version, version);
  t.deepEqual(shown.skills, [{ name: "multica-cli", description: "", content: "Use the CLI.", files: [{ path: "a.md", content: "A" }] }]);

  await writeFile(file, JSON.stringify({ version: 1, skills: [{ name: "x" }] }));
  const error = await t.throwsAsync(cpctl("task", "builtin-skills", "set", file));
  t.regex((error as unknown as { stderr: string }).stderr, /skills\[0\]\.content must be a string/);
});

const CPCTL = fileURLToPath(new URL("../../bin/cpctl.js", import.meta.url));
async function cpctl(...args: string[]): Promise<unknown> {
  const { stdout } = await promisify(execFile)("node", [
    CPCTL,
    "--registry",
    stack.registryAddr,
    "--profiles",
    stack.profilesAddr,
    "--tasks",
    stack.tasksAddr,
    "--liveness",
    stack.livenessAddr,
    "--json",
    ...args,
  ]);
  return JSON.parse(stdout);
}
