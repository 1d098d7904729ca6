import { randomUUID } from "node:crypto";
import test from "ava";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

// N4, skill-bundle resolve (§13.8): the checks and errors, in order. The
// bundles themselves are product data the control plane does not hold, so a
// well-formed reference is one the original would not know: 404.

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const TODAY = { "x-client-capabilities": "skill-bundles-v1,local-worktree-v1,rpc-v1" };
const resolvePath = (runtimeId: string, taskId: string) => `/api/daemon/runtimes/${runtimeId}/tasks/${taskId}/skill-bundles/resolve`;
const resolve = (token: string, runtimeId: string, taskId: string, body: unknown, rawBody?: string) =>
  http(stack.gatewayUrl, "POST", resolvePath(runtimeId, taskId), { token, body: rawBody === undefined ? body : undefined, rawBody, headers: TODAY });

const ref = (extra: Record<string, unknown> = {}) => ({
  id: randomUUID(),
  source: "workspace",
  name: "pdf",
  hash: "sha256:0123",
  size_bytes: 10,
  file_count: 1,
  ...extra,
});

/** A task claimed by its runtime (dispatched), on a fresh runtime of `ws`. */
async function dispatched(ws: SeededWorkspace) {
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  const { task } = await enqueue(stack, agentId);
  const claim = await claimOverHttp(stack, ws.member.pat, runtimeId);
  if ((claim.json as { task?: { id: string } }).task?.id !== task.id) throw new Error(`claim: ${claim.text}`);
  return { runtimeId, taskId: task.id };
}

test("H-31 (what our data allows): while preparing, [] → {bundles:[]}, a ref without a hash → 400, a well-formed ref → 404; once running → 409", async (t) => {
  const ws = await seedWorkspace(stack);
  const { runtimeId, taskId } = await dispatched(ws);

  for (const body of [{ skills: [] }, {}, null]) {
    const empty = await resolve(ws.member.pat, runtimeId, taskId, body);
    t.is(empty.status, 200, JSON.stringify(body));
    t.is(empty.contentType, "application/json");
    t.is(empty.text, '{"bundles":[]}\n');
  }
  for (const broken of [ref({ hash: "" }), ref({ hash: undefined }), ref({ id: " " }), ref({ source: "" }), null]) {
    const answer = await resolve(ws.member.pat, runtimeId, taskId, { skills: [broken, ref()] });
    t.is(answer.status, 400, JSON.stringify(broken));
    t.is(answer.text, '{"error":"invalid skill ref"}\n');
  }
  const unknown = await resolve(ws.member.pat, runtimeId, taskId, { skills: [ref(), ref({ hash: "" })] });
  t.is(unknown.status, 404);
  t.is(unknown.text, '{"error":"skill bundle not found"}\n', "the first reference decides");
  const wrongType = await resolve(ws.member.pat, runtimeId, taskId, { skills: "pdf" });
  t.is(wrongType.text, '{"error":"invalid request body"}\n');

  t.is((await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${taskId}/start`, { token: ws.member.pat, body: {} })).status, 200);
  const running = await resolve(ws.member.pat, runtimeId, taskId, { skills: [ref()] });
  t.is(running.status, 409);
  t.is(running.text, '{"error":"task is not preparing"}\n');
  const runningBadBody = await resolve(ws.member.pat, runtimeId, taskId, undefined, "{");
  t.is(runningBadBody.status, 409, "the status is checked before the body is read");
});

test("a task parked on a local directory is still preparing", async (t) => {
  const ws = await seedWorkspace(stack);
  const { runtimeId, taskId } = await dispatched(ws);
  const wait = await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${taskId}/wait-local-directory`, {
    token: ws.member.pat,
    body: { reason: "repo (held by task 1234abcd)" },
  });
  t.is(wait.status, 200, wait.text);
  t.is((await resolve(ws.member.pat, runtimeId, taskId, { skills: [] })).text, '{"bundles":[]}\n');
});

test("R, then T, then the same runtime: each refusal in order", async (t) => {
  const ws = await seedWorkspace(stack);
  const { runtimeId, taskId } = await dispatched(ws);
  const otherRuntime = await seedRuntime(stack, ws);
  const stranger = await seedWorkspace(stack);
  const { token: foreignToken } = await stack.identity.issueDaemonToken({ workspaceId: stranger.workspaceId, daemonId: "d", ttlSeconds: 0 });

  const cases: Array<[string, string, string, number, string]> = [
    [ws.member.pat, "nope", taskId, 400, '{"error":"invalid runtime_id"}\n'],
    [ws.member.pat, randomUUID(), "nope", 404, '{"error":"runtime not found"}\n'],
    [foreignToken, runtimeId, taskId, 404, '{"error":"not found"}\n'],
    [ws.member.pat, runtimeId, "nope", 400, '{"error":"invalid task_id"}\n'],
    [ws.member.pat, runtimeId, randomUUID(), 404, '{"error":"task not found"}\n'],
    [ws.member.pat, otherRuntime, taskId, 404, '{"error":"task not found"}\n'],
  ];
  for (const [token, runtime, task, status, text] of cases) {
    const answer = await resolve(token, runtime, task, { skills: [] });
    t.is(answer.status, status, `${runtime} ${task}`);
    t.is(answer.text, text, `${runtime} ${task}`);
  }
  const noAuth = await http(stack.gatewayUrl, "POST", resolvePath(runtimeId, taskId), { body: {} });
  t.is(noAuth.text, '{"error":"missing authorization header"}');
});
