import { randomUUID } from "node:crypto";
import test from "ava";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../../../test/support/stack.js";
import { enqueue, seedAgent, seedRuntime } from "../../../test/support/tasks.js";
import { Authenticator } from "../src/auth/authenticator.js";
import type { Caller } from "../src/auth/authenticator.js";
import { Resources } from "../src/auth/resources.js";
import { closeGatewayClients, createGatewayClients, type GatewayClients } from "../src/clients.js";
import { HttpError } from "../src/wire/errors.js";

// R and T, the gateway's runtime and task checks, against the real registry
// and task queue: a Resources of the test's own over gRPC clients of its own,
// so its caches start empty and nothing else warms them.

let stack: Stack;
let clients: GatewayClients;
let ws: SeededWorkspace;
let other: SeededWorkspace;
let runtimeId: string;
let taskId: string;
/** Callers as the gateway's Authenticator resolves them from real tokens. */
const callers = new Map<string, { daemon: Caller; member: Caller }>();

/** Long enough that no entry expires during a test. */
const TTL_MS = 600_000;

test.before(async () => {
  stack = await startStack();
  clients = createGatewayClients({
    registry: stack.registryAddr,
    profileCatalog: stack.profilesAddr,
    taskQueue: stack.tasksAddr,
    liveness: stack.livenessAddr,
  });
  ws = await seedWorkspace(stack);
  other = await seedWorkspace(stack);
  runtimeId = await seedRuntime(stack, ws);
  taskId = (await enqueue(stack, await seedAgent(stack, ws, runtimeId))).task.id;
  const auth = new Authenticator(clients, TTL_MS);
  for (const w of [ws, other]) {
    const { token } = await stack.identity.issueDaemonToken({ workspaceId: w.workspaceId, daemonId: "d", ttlSeconds: 3600 });
    callers.set(w.workspaceId, { daemon: await auth.resolve(token, "middleware"), member: await auth.resolve(w.member.pat, "middleware") });
  }
});
test.after.always(async () => {
  if (clients) closeGatewayClients(clients);
  await stack?.stop();
});

const resources = () => new Resources(clients, new Authenticator(clients, TTL_MS), TTL_MS);
const daemonOf = (w: SeededWorkspace): Caller => callers.get(w.workspaceId)!.daemon;
const memberOf = (w: SeededWorkspace): Caller => callers.get(w.workspaceId)!.member;

/** The HttpError `work` fails with, as [status, message]. */
async function refusal(work: Promise<unknown>): Promise<[number, string]> {
  const error = await work.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof HttpError)) throw new Error(`expected an HttpError, got ${String(error)}`, { cause: error });
  return [error.statusCode, error.message];
}

test("R: the runtime for its workspace's daemon token and members; 404 not found for anyone else", async (t) => {
  const r = resources();
  t.is((await r.runtime(daemonOf(ws), runtimeId)).id, runtimeId);
  t.is((await r.runtime(memberOf(ws), runtimeId.toUpperCase())).id, runtimeId, "ids are read in any case");
  t.deepEqual(await refusal(r.runtime(daemonOf(other), runtimeId)), [404, "not found"]);
  t.deepEqual(await refusal(r.runtime(memberOf(other), runtimeId)), [404, "not found"]);
});

test("R: a malformed id is 400 invalid runtime_id; an absent runtime 404 runtime not found", async (t) => {
  const r = resources();
  t.deepEqual(await refusal(r.runtime(daemonOf(ws), "not-a-uuid")), [400, "invalid runtime_id"]);
  t.deepEqual(await refusal(r.runtime(daemonOf(ws), randomUUID())), [404, "runtime not found"]);
  t.deepEqual(await refusal(r.runtimeAccess(daemonOf(ws), "not-a-uuid")), [400, "invalid runtime_id"]);
  t.deepEqual(await refusal(r.runtimeAccess(daemonOf(ws), randomUUID())), [404, "runtime not found"]);
});

test("R for the heartbeat: the canonical id once its workspace is known; other workspaces 404 not found", async (t) => {
  const r = resources();
  t.is(await r.runtimeAccess(daemonOf(ws), runtimeId.toUpperCase()), runtimeId);
  t.is(await r.runtimeWorkspace(runtimeId, "failed"), ws.workspaceId);
  t.deepEqual(await refusal(r.runtimeAccess(daemonOf(other), runtimeId)), [404, "not found"]);
  t.is(await r.runtimeWorkspace(randomUUID(), "failed"), undefined, "no such runtime");
});

test("R for the heartbeat without waiting: only what runtimeAccess would let in, once all it needs is cached", async (t) => {
  const r = resources();
  t.is(r.knownRuntimeAccess(daemonOf(ws), runtimeId), undefined, "the runtime's workspace is not known yet");
  t.is(await r.runtimeAccess(daemonOf(ws), runtimeId), runtimeId);
  t.is(r.knownRuntimeAccess(daemonOf(ws), runtimeId.toUpperCase()), runtimeId);
  t.is(r.knownRuntimeAccess(daemonOf(other), runtimeId), undefined, "another workspace's token: runtimeAccess words the 404");
  t.is(r.knownRuntimeAccess(daemonOf(ws), "not-a-uuid"), undefined);
  t.is(r.knownRuntimeAccess(memberOf(other), runtimeId), undefined, "a user who is no member");
  t.is(r.knownRuntimeAccess(memberOf(ws), runtimeId), undefined, "a membership not read yet");
  t.is(await r.runtimeAccess(memberOf(ws), runtimeId), runtimeId);
  t.is(r.knownRuntimeAccess(memberOf(ws), runtimeId), runtimeId, "a cached membership");
});

test("R and T without waiting: a cached runtime or task, for a caller let in", async (t) => {
  const r = resources();
  t.is(r.knownRuntime(daemonOf(ws), runtimeId), undefined, "the runtime is not cached yet");
  await r.runtime(daemonOf(ws), runtimeId);
  t.is(r.knownRuntime(daemonOf(ws), runtimeId.toUpperCase())?.id, runtimeId);
  t.is(r.knownRuntime(daemonOf(other), runtimeId), undefined, "another workspace's token: runtime words the 404");
  t.is(r.knownRuntime(daemonOf(ws), "not-a-uuid"), undefined);
  t.is(r.knownTaskAccess(daemonOf(ws), taskId), undefined, "the task's workspace is not known yet");
  r.rememberTask(taskId, ws.workspaceId);
  t.is(r.knownTaskAccess(daemonOf(ws), taskId.toUpperCase()), taskId);
  t.is(r.knownTaskAccess(daemonOf(other), taskId), undefined);
  t.is(r.knownTaskAccess(memberOf(other), taskId), undefined);
});

test("T: the task for its workspace; bad id 400, unknown 404 task not found, another workspace 404 not found", async (t) => {
  const r = resources();
  t.is((await r.task(daemonOf(ws), taskId)).id, taskId);
  t.is(await r.taskAccess(memberOf(ws), taskId.toUpperCase()), taskId);
  t.deepEqual(await refusal(r.task(daemonOf(ws), "nope")), [400, "invalid task_id"]);
  t.deepEqual(await refusal(r.taskAccess(daemonOf(ws), "nope")), [400, "invalid task_id"]);
  t.deepEqual(await refusal(r.task(daemonOf(ws), randomUUID())), [404, "task not found"]);
  t.deepEqual(await refusal(r.taskAccess(daemonOf(other), taskId)), [404, "not found"]);
});

test("T for reports: a task's remembered workspace is checked without asking the task queue", async (t) => {
  const r = resources();
  // No task has this id: only the remembered workspace can answer for it.
  const claimedElsewhere = randomUUID();
  r.rememberTask(claimedElsewhere, ws.workspaceId);
  t.is(await r.taskAccess(daemonOf(ws), claimedElsewhere), claimedElsewhere);
  t.deepEqual(await refusal(r.taskAccess(daemonOf(other), claimedElsewhere)), [404, "not found"]);
  // Unremembered, the same id is looked up, and the task queue knows no such task.
  t.deepEqual(await refusal(resources().taskAccess(daemonOf(ws), claimedElsewhere)), [404, "task not found"]);
});
