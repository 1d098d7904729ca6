import { randomUUID } from "node:crypto";
import test from "ava";
import { status } from "@controlplane/grpc";
import type { WorkItem } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { query, waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const get = (token: string, path: string) => http(stack.gatewayUrl, "GET", `/api/daemon${path}`, { token });
const userRoute = (ws: SeededWorkspace, method: string, path: string) =>
  http(stack.gatewayUrl, method, path, { token: ws.member.pat, headers: { "x-workspace-id": ws.workspaceId } });
const statusOf = async (taskId: string) =>
  (await query<{ status: string }>(stack.db.url, "SELECT status FROM taskqueue.task WHERE id = $1", [taskId]))[0]!.status;

async function setup() {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  return { ws, runtimeId, agentId, token: ws.member.pat };
}

function record(item: Partial<WorkItem> & Pick<WorkItem, "kind" | "workspaceId">) {
  const full: WorkItem = { id: randomUUID(), status: "todo", updatedAt: new Date(), ...item };
  return stack.tasks.recordWorkItem({ item: full }).then(() => full);
}

test("enqueue refuses a recorded issue, chat session or autopilot run of another workspace, naming both", async (t) => {
  const a = await setup();
  const b = await seedWorkspace(stack);
  for (const [kind, field, label] of [
    ["issue", "issueId", "issue"],
    ["chat_session", "chatSessionId", "chat session"],
    ["autopilot_run", "autopilotRunId", "autopilot run"],
  ] as const) {
    const item = await record({ kind, workspaceId: b.workspaceId, status: "active" });
    const error = await t.throwsAsync(enqueue(stack, a.agentId, { issueId: undefined, [field]: item.id }));
    t.like(error as object, {
      code: status.FAILED_PRECONDITION,
      details: `${label} ${item.id} belongs to workspace ${b.workspaceId}, not to the agent's workspace ${a.ws.workspaceId}`,
    });
  }
  t.deepEqual(await query(stack.db.url, "SELECT 1 FROM taskqueue.task WHERE agent_id = $1", [a.agentId]), [], "nothing was queued");
  // Its own workspace's items, and items never recorded, are fine.
  const own = await record({ kind: "issue", workspaceId: a.ws.workspaceId });
  t.false((await enqueue(stack, a.agentId, { issueId: own.id })).deduplicated);
  t.false((await enqueue(stack, a.agentId, { issueId: randomUUID() })).deduplicated);
});

test("claim resolves the task's workspace from its work item: another workspace's is cancelled with the contract's 500", async (t) => {
  const a = await setup();
  const b = await seedWorkspace(stack);
  // Queued while the product had not recorded the issue; then it records it in another workspace.
  const issueId = randomUUID();
  const { task } = await enqueue(stack, a.agentId, { issueId });
  await record({ kind: "issue", id: issueId, workspaceId: b.workspaceId });
  const answer = await claimOverHttp(stack, a.token, a.runtimeId);
  t.is(answer.status, 500);
  t.is(answer.text, '{"error":"task workspace isolation check failed"}\n');
  t.is(await statusOf(task.id), "cancelled");
  t.deepEqual(await query(stack.db.url, "SELECT 1 FROM taskqueue.task_token WHERE task_id = $1", [task.id]), [], "no token minted");

  // A chat task whose session is recorded in the runtime's workspace is handed out, bound to it.
  const session = await record({ kind: "chat_session", workspaceId: a.ws.workspaceId, status: "active" });
  const chat = (await enqueue(stack, a.agentId, { issueId: undefined, chatSessionId: session.id })).task;
  const claimed = await claimOverHttp(stack, a.token, a.runtimeId);
  t.is(claimed.status, 200);
  t.like(claimed.json as object, { task: { id: chat.id, workspace_id: a.ws.workspaceId, chat_session_id: session.id } });
});

test("a task whose autopilot run moved to another workspace fails isolation at claim too", async (t) => {
  const a = await setup();
  const b = await seedWorkspace(stack);
  const run = await record({ kind: "autopilot_run", workspaceId: a.ws.workspaceId, status: "running" });
  const { task } = await enqueue(stack, a.agentId, { issueId: undefined, autopilotRunId: run.id });
  await record({ ...run, workspaceId: b.workspaceId, updatedAt: new Date(run.updatedAt!.getTime() + 1000) });
  t.is((await claimOverHttp(stack, a.token, a.runtimeId)).text, '{"error":"task workspace isolation check failed"}\n');
  t.is(await statusOf(task.id), "cancelled");
});

test("enqueue for an agent with no owner on a runtime with none fails at once, saying what to fix", async (t) => {
  const ws = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "ownerless", ttlSeconds: 3600 });
  const register = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token,
    body: { workspace_id: ws.workspaceId, daemon_id: "ownerless", runtimes: [{ type: "claude" }] },
  });
  const runtimeId = (register.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
  const ownerless = await seedAgent(stack, ws, runtimeId);
  const error = await t.throwsAsync(enqueue(stack, ownerless));
  t.like(error as object, {
    code: status.FAILED_PRECONDITION,
    details: "agent has no owner and its runtime has none: nobody to act for; set the agent's owner or register the runtime with a user's token",
  });
  t.deepEqual(await query(stack.db.url, "SELECT 1 FROM taskqueue.task WHERE agent_id = $1", [ownerless]), []);

  // With an owner, the same runtime's task is queued and handed out acting for that owner.
  const owned = await seedAgent(stack, ws, runtimeId, { ownerId: ws.owner.userId });
  const { task } = await enqueue(stack, owned);
  const claimed = await claimOverHttp(stack, token, runtimeId);
  t.like(claimed.json as object, { task: { id: task.id } });
  const rows = await query<{ user_id: string }>(stack.db.url, "SELECT user_id FROM taskqueue.task_token WHERE task_id = $1", [task.id]);
  t.deepEqual(rows, [{ user_id: ws.owner.userId }]);
});

test("deleted issues, chat sessions and autopilot runs answer their gc-check 404, and their tasks are cancelled", async (t) => {
  const { ws, agentId, token } = await setup();
  const issue = await record({ kind: "issue", workspaceId: ws.workspaceId, status: "in_progress" });
  const session = await record({ kind: "chat_session", workspaceId: ws.workspaceId, status: "active" });
  const run = await record({ kind: "autopilot_run", workspaceId: ws.workspaceId, status: "running", completedAt: new Date("2026-01-02T03:04:05Z") });
  t.is((await get(token, `/issues/${issue.id}/gc-check`)).status, 200);
  t.is((await get(token, `/chat-sessions/${session.id}/gc-check`)).status, 200);
  t.deepEqual((await get(token, `/autopilot-runs/${run.id}/gc-check`)).json, { status: "running", completed_at: "2026-01-02T03:04:05Z" });

  const issueTask = (await enqueue(stack, agentId, { issueId: issue.id })).task;
  const chatTask = (await enqueue(stack, agentId, { issueId: undefined, chatSessionId: session.id })).task;
  const runTask = (await enqueue(stack, agentId, { issueId: undefined, autopilotRunId: run.id })).task;
  // A run that created an issue: its issue task outlives the run.
  const runIssue = (await enqueue(stack, agentId, { autopilotRunId: run.id })).task;

  t.is((await stack.tasks.deleteWorkItem({ kind: "issue", id: issue.id })).cancelledTasks, 1);
  t.is((await stack.tasks.deleteWorkItem({ kind: "chat_session", id: session.id })).cancelledTasks, 1);
  t.is((await stack.tasks.deleteWorkItem({ kind: "autopilot_run", id: run.id })).cancelledTasks, 1);
  t.is((await stack.tasks.deleteWorkItem({ kind: "issue", id: issue.id })).cancelledTasks, 0, "repeating it is harmless");
  t.is((await get(token, `/issues/${issue.id}/gc-check`)).text, '{"error":"issue not found"}\n');
  t.is((await get(token, `/chat-sessions/${session.id}/gc-check`)).text, '{"error":"chat session not found"}\n');
  t.is((await get(token, `/autopilot-runs/${run.id}/gc-check`)).text, '{"error":"autopilot run not found"}\n');
  t.deepEqual(
    [await statusOf(issueTask.id), await statusOf(chatTask.id), await statusOf(runTask.id), await statusOf(runIssue.id)],
    ["cancelled", "cancelled", "cancelled", "queued"],
  );
  await waitFor("task.cancelled for each", async () => {
    const ids = (await stack.events.read("task.cancelled")).map((e) => e.event.task!.taskId);
    return [issueTask.id, chatTask.id, runTask.id].every((id) => ids.includes(id));
  });

  // Deletion is final: a late report (even a newer one) does not bring it back.
  await record({ ...issue, status: "done", updatedAt: new Date(Date.now() + 60_000) });
  t.is((await get(token, `/issues/${issue.id}/gc-check`)).text, '{"error":"issue not found"}\n');
  // Nor can work be queued for it.
  const refused = await t.throwsAsync(enqueue(stack, agentId, { issueId: issue.id }));
  t.like(refused as object, { code: status.NOT_FOUND, details: "issue not found" });
  // Deleting an item never recorded leaves a tombstone: a report arriving after the deletion changes nothing.
  const unseen = randomUUID();
  await stack.tasks.deleteWorkItem({ kind: "chat_session", id: unseen, deletedAt: new Date("2026-01-01T00:00:00Z") });
  await record({ kind: "chat_session", id: unseen, workspaceId: ws.workspaceId, status: "active", updatedAt: new Date() });
  t.is((await get(token, `/chat-sessions/${unseen}/gc-check`)).text, '{"error":"chat session not found"}\n');
  const badKind = await t.throwsAsync(stack.tasks.deleteWorkItem({ kind: "comment", id: unseen }));
  t.like(badKind as object, { code: status.INVALID_ARGUMENT });
});

test("an autopilot run's gc-check answers 404 once its autopilot is deleted; run-only tasks of its runs are cancelled", async (t) => {
  const { ws, agentId, token } = await setup();
  const autopilotId = randomUUID();
  const run = await record({ kind: "autopilot_run", workspaceId: ws.workspaceId, status: "completed", autopilotId });
  const other = await record({ kind: "autopilot_run", workspaceId: ws.workspaceId, status: "running", autopilotId: randomUUID() });
  const { task } = await enqueue(stack, agentId, { issueId: undefined, autopilotRunId: run.id });
  t.is((await get(token, `/autopilot-runs/${run.id}/gc-check`)).status, 200);
  t.is((await stack.tasks.deleteWorkItem({ kind: "autopilot", id: autopilotId })).cancelledTasks, 1);
  t.is((await get(token, `/autopilot-runs/${run.id}/gc-check`)).text, '{"error":"autopilot run not found"}\n');
  t.is((await get(token, `/autopilot-runs/${other.id}/gc-check`)).status, 200, "another autopilot's run stays");
  t.is(await statusOf(task.id), "cancelled");
  const misplaced = await t.throwsAsync(record({ kind: "issue", workspaceId: ws.workspaceId, autopilotId }));
  t.like(misplaced as object, { code: status.INVALID_ARGUMENT, details: "autopilot_id is for autopilot runs only" });
});

test("issue routes take an identifier (PREFIX-42) as well as a UUID, within the caller's workspace", async (t) => {
  const { ws, runtimeId, agentId, token } = await setup();
  const other = await setup();
  const issue = await record({ kind: "issue", workspaceId: ws.workspaceId, number: 42 });
  // The same number in another workspace is another issue.
  const foreign = await record({ kind: "issue", workspaceId: other.ws.workspaceId, number: 42 });
  const { task } = await enqueue(stack, agentId, { issueId: issue.id });
  await enqueue(stack, other.agentId, { issueId: foreign.id });

  const active = await userRoute(ws, "GET", "/api/issues/ABC-42/active-task");
  t.is(active.status, 200);
  t.deepEqual(
    (active.json as { tasks: Array<{ id: string }> }).tasks.map((x) => x.id),
    [task.id],
  );
  // The prefix is not checked, as in the original; lower case works too.
  t.is((await userRoute(ws, "GET", "/api/issues/zz-42/active-task")).status, 200);
  t.deepEqual(
    ((await userRoute(ws, "GET", "/api/issues/ABC-42/task-runs")).json as Array<{ id: string }>).map((x) => x.id),
    [task.id],
  );
  t.like((await userRoute(ws, "GET", "/api/issues/ABC-42/usage")).json as object, { task_count: 0 });
  t.is((await userRoute(ws, "GET", `/api/issues/${issue.id}/active-task`)).status, 200, "the UUID still works");

  for (const ref of ["ABC-43", "ABC-0", "ABC-", "-42", "ABC-4x2", "nonsense", foreign.id]) {
    const answer = await userRoute(ws, "GET", `/api/issues/${encodeURIComponent(ref)}/active-task`);
    t.is(answer.status, 404, ref);
    t.is(answer.text, '{"error":"issue not found"}\n', ref);
  }

  const cancelled = await userRoute(ws, "POST", `/api/issues/ABC-42/tasks/${task.id}/cancel`);
  t.is(cancelled.status, 200);
  t.like(cancelled.json as object, { id: task.id, status: "cancelled" });
  t.is((await claimOverHttp(stack, token, runtimeId)).text, '{"task":null}\n');

  // A deleted issue is not found, by identifier or UUID.
  await stack.tasks.deleteWorkItem({ kind: "issue", id: issue.id });
  t.is((await userRoute(ws, "GET", "/api/issues/ABC-42/active-task")).status, 404);
  t.is((await userRoute(ws, "GET", `/api/issues/${issue.id}/task-runs`)).text, '{"error":"issue not found"}\n');
  // Renumbered: the newest report wins.
  const renumbered = await record({ kind: "issue", workspaceId: ws.workspaceId, number: 7 });
  await record({ ...renumbered, number: 8, updatedAt: new Date(renumbered.updatedAt!.getTime() + 1000) });
  t.is((await userRoute(ws, "GET", "/api/issues/ABC-7/task-runs")).status, 404);
  t.is((await userRoute(ws, "GET", "/api/issues/ABC-8/task-runs")).text, "[]\n");
});

test("ResolveIssue finds unrecorded issues through their tasks only", async (t) => {
  const { ws, agentId } = await setup();
  const { task } = await enqueue(stack, agentId);
  t.is((await stack.tasks.resolveIssue({ workspaceId: ws.workspaceId, issueRef: task.issueId!.toUpperCase() })).issueId, task.issueId!);
  const missing = await t.throwsAsync(stack.tasks.resolveIssue({ workspaceId: ws.workspaceId, issueRef: randomUUID() }));
  t.like(missing as object, { code: status.NOT_FOUND, details: "issue not found" });
  const elsewhere = await seedWorkspace(stack);
  const foreign = await t.throwsAsync(stack.tasks.resolveIssue({ workspaceId: elsewhere.workspaceId, issueRef: task.issueId! }));
  t.like(foreign as object, { code: status.NOT_FOUND });
});
