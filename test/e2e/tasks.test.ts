import { createHash, randomUUID } from "node:crypto";
import test from "ava";
import { query, waitFor } from "@controlplane/testkit";
import { golden, normalize } from "../support/golden.js";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

let stack: Stack;
test.before(async () => {
  // A short auth cache, so a revoked task token is refused quickly.
  stack = await startStack({ AUTH_CACHE_TTL_MS: "500" });
});
test.after.always(async () => {
  await stack?.stop();
});

type TaskJson = Record<string, unknown> & { id: string; status: string; auth_token?: string };
const taskOf = (answer: { json: unknown }) => (answer.json as { task: TaskJson | null }).task;
const post = (token: string, path: string, body?: unknown) => http(stack.gatewayUrl, "POST", `/api/daemon${path}`, { token, body });
const get = (token: string, path: string) => http(stack.gatewayUrl, "GET", `/api/daemon${path}`, { token });

async function setup() {
  const ws = await seedWorkspace(stack);
  await stack.identity.updateWorkspace({
    workspaceId: ws.workspaceId,
    repos: { repos: [{ url: " https://github.com/acme/app ", description: "app" }] },
    context: "Workspace rules: be kind.",
  });
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  return { ws, runtimeId, agentId, token: ws.member.pat };
}

test('claim answers {"task":null} when nothing is queued, and the full task when something is (golden)', async (t) => {
  const { ws, runtimeId, agentId, token } = await setup();
  const empty = await claimOverHttp(stack, token, runtimeId);
  t.is(empty.status, 200);
  t.is(empty.text, '{"task":null}\n');

  const issueId = randomUUID();
  const initiator = randomUUID();
  const { task } = await enqueue(stack, agentId, {
    issueId,
    priority: 3,
    initiatorUserId: initiator,
    triggerCommentId: randomUUID(),
    triggerSummary: "please fix the login bug",
    context: {
      threadName: "Login is broken",
      triggerCommentContent: "@coder please fix <this> & that",
      triggerAuthorType: "member",
      triggerAuthorName: "Ada",
      projectId: randomUUID(),
      projectTitle: "Web",
      projectResourcesJson: '[{"id":"r1","resource_type":"github_repo","resource_ref":{"url":"https://github.com/acme/web"}}]',
      reposJson: '[{"url":"https://github.com/acme/web"}]',
      requestingUserName: "Ada",
      instructionsSuffix: "You lead the squad.",
    },
  });
  const claimed = await claimOverHttp(stack, token, runtimeId);
  t.is(claimed.status, 200);
  const body = taskOf(claimed)!;
  t.is(body.id, task.id);
  t.regex(body.auth_token!, /^mat_[0-9a-f]{40}$/);
  const normalized = normalize(claimed.text.replace(body.auth_token!, "<auth_token>"), {
    task: task.id,
    agent: agentId,
    runtime: runtimeId,
    workspace: ws.workspaceId,
    issue: issueId,
    initiator,
  });
  t.is(normalized, golden(new URL("golden/claim.json", import.meta.url), normalized));
});

test("start, complete and fail answer the task (golden); tokens are revoked at the end", async (t) => {
  const { ws, runtimeId, agentId, token } = await setup();
  const first = (await enqueue(stack, agentId)).task;
  const second = (await enqueue(stack, agentId)).task;
  const names = { workspace: ws.workspaceId, agent: agentId, runtime: runtimeId, first: first.id, second: second.id };

  const claimedFirst = taskOf(await claimOverHttp(stack, token, runtimeId))!;
  const started = await post(token, `/tasks/${first.id}/start`);
  t.is(started.status, 200);
  const startedBody = normalize(started.text, { ...names, issue: first.issueId! });
  t.is(startedBody, golden(new URL("golden/start.json", import.meta.url), startedBody));

  const tokenHash = createHash("sha256").update(claimedFirst.auth_token!).digest("hex");
  const stored = await query<{ token_hash: string; user_id: string }>(stack.db.url, "SELECT token_hash, user_id FROM taskqueue.task_token WHERE task_id = $1", [
    first.id,
  ]);
  t.deepEqual(stored, [{ token_hash: tokenHash, user_id: ws.member.userId }], "stored hashed, bound to the runtime's owner");

  const completed = await post(token, `/tasks/${first.id}/complete`, {
    pr_url: "https://github.com/acme/app/pull/7",
    output: "Done <3",
    session_id: "sess-1",
    work_dir: `/Users/ada/multica/${ws.workspaceId}/${first.id.replaceAll("-", "").slice(0, 8)}/app`,
    branch_name: "fix-login",
  });
  t.is(completed.status, 200);
  const completedBody = normalize(completed.text, { ...names, issue: first.issueId! }).replaceAll(first.id.replaceAll("-", "").slice(0, 8), "<first8>");
  t.is(completedBody, golden(new URL("golden/complete.json", import.meta.url), completedBody));
  t.deepEqual(await query(stack.db.url, "SELECT 1 FROM taskqueue.task_token WHERE task_id = $1", [first.id]), [], "revoked on complete");

  taskOf(await claimOverHttp(stack, token, runtimeId));
  const failed = await post(token, `/tasks/${second.id}/fail`, { error: "rate limit exceeded (429)", work_dir: "/home/ada/work/app" });
  t.is(failed.status, 200);
  const failedBody = normalize(failed.text, { ...names, issue: second.issueId! });
  t.is(failedBody, golden(new URL("golden/fail.json", import.meta.url), failedBody));
  t.deepEqual(await query(stack.db.url, "SELECT 1 FROM taskqueue.task_token WHERE task_id = $1", [second.id]), [], "revoked on fail");
});

test("illegal transitions: start and wait answer 400; complete and fail answer the unchanged task", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  const queuedComplete = await post(token, `/tasks/${task.id}/complete`, { output: "too early" });
  t.is(queuedComplete.status, 200);
  t.like(queuedComplete.json as object, { status: "queued", result: null });
  const queuedStart = await post(token, `/tasks/${task.id}/start`);
  t.is(queuedStart.status, 400);
  t.is(queuedStart.text, '{"error":"start task: no rows in result set"}\n');

  await claimOverHttp(stack, token, runtimeId);
  const dispatchedComplete = await post(token, `/tasks/${task.id}/complete`, { output: "x" });
  t.like(dispatchedComplete.json as object, { status: "dispatched" });
  t.is((await post(token, `/tasks/${task.id}/wait-local-directory`, { reason: "  /repo held by task 1234abcd " })).status, 200);
  const waiting = await get(token, `/tasks/${task.id}/status`);
  t.is(waiting.text, '{"status":"waiting_local_directory"}\n');
  const waitAgain = await post(token, `/tasks/${task.id}/wait-local-directory`);
  t.is(waitAgain.status, 400);
  t.deepEqual(waitAgain.json, { error: "mark task waiting_local_directory: no rows in result set" });
  t.is((await post(token, `/tasks/${task.id}/start`)).status, 200, "start from waiting_local_directory");
  t.is((await post(token, `/tasks/${task.id}/start`)).status, 400, "start twice");

  const first = await post(token, `/tasks/${task.id}/complete`, { output: "ok" });
  const replay = await post(token, `/tasks/${task.id}/complete`, { output: "replayed" });
  const lateFail = await post(token, `/tasks/${task.id}/fail`, { error: "late" });
  t.deepEqual([first.status, replay.status, lateFail.status], [200, 200, 200]);
  t.is(replay.text, first.text, "a replayed report gets the same answer");
  t.like(lateFail.json as object, { status: "completed", error: null });
  await waitFor("task.completed", async () => (await stack.events.read("task.completed")).some((e) => e.event.task!.taskId === task.id));
  // A marker event after the replays proves none of them published anything.
  const marker = (await enqueue(stack, agentId)).task;
  await waitFor("the marker", async () => (await stack.events.read("task.queued")).some((e) => e.event.task!.taskId === marker.id));
  t.is((await stack.events.read("task.completed")).filter((e) => e.event.task!.taskId === task.id).length, 1);
  t.is((await stack.events.read("task.started")).filter((e) => e.event.task!.taskId === task.id).length, 1);
  t.is((await stack.events.read("task.failed")).filter((e) => e.event.task!.taskId === task.id).length, 0);
});

test("fail classifies the error text when no reason is given, and keeps the resume pointer", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  await claimOverHttp(stack, token, runtimeId);
  await post(token, `/tasks/${task.id}/session`, { session_id: "s-9", work_dir: "/tmp/w" });
  const failed = await post(token, `/tasks/${task.id}/fail`, { error: "Error: exit status 1" });
  t.like(failed.json as object, { status: "failed", failure_reason: "agent_error.process_failure", work_dir: "/tmp/w" });
  const rows = await query<{ session_id: string }>(stack.db.url, "SELECT session_id FROM taskqueue.task WHERE id = $1", [task.id]);
  t.is(rows[0]!.session_id, "s-9");
});

test("cross-workspace task and runtime ids answer 404 not found; unknown ones 404 task/runtime not found", async (t) => {
  const a = await setup();
  const b = await setup();
  const { task } = await enqueue(stack, a.agentId);
  for (const path of [`/tasks/${task.id}/status`, `/tasks/${task.id}/messages`, `/tasks/${task.id}/gc-check`]) {
    const answer = await get(b.token, path);
    t.is(answer.status, 404, path);
    t.is(answer.text, '{"error":"not found"}\n');
  }
  t.is((await post(b.token, `/tasks/${task.id}/start`)).text, '{"error":"not found"}\n');
  t.is((await claimOverHttp(stack, b.token, a.runtimeId)).text, '{"error":"not found"}\n');
  t.is((await get(a.token, `/tasks/${randomUUID()}/status`)).text, '{"error":"task not found"}\n');
  t.is((await claimOverHttp(stack, a.token, randomUUID())).text, '{"error":"runtime not found"}\n');
  t.is((await get(a.token, "/tasks/not-a-uuid/status")).text, '{"error":"invalid task_id"}\n');
  t.is((await claimOverHttp(stack, a.token, "nope")).text, '{"error":"invalid runtime_id"}\n');
  t.is((await get(a.token, `/tasks/${task.id}/status`)).text, '{"status":"queued"}\n');
});

test("messages: secrets redacted before storing and publishing; since filters; empty batch is ok", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  await claimOverHttp(stack, token, runtimeId);
  t.is((await post(token, `/tasks/${task.id}/messages`, { messages: [] })).text, '{"status":"ok"}\n');
  const sent = await post(token, `/tasks/${task.id}/messages`, {
    messages: [
      { seq: 1, type: "text", content: "using key sk-abcdefghijklmnopqrstuvwxyz123456 now" },
      {
        seq: 2,
        type: "tool_use",
        tool: "bash",
        input: { command: "curl -H 'Authorization: Bearer abc.def.ghi' x", nested: { token: "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" } },
      },
      { seq: 3, type: "tool_result", output: "DATABASE_URL=postgres://u:pw@db/x\nAKIAABCDEFGHIJKLMNOP" },
    ],
  });
  t.is(sent.status, 200);
  const all = await get(token, `/tasks/${task.id}/messages`);
  const messages = all.json as Array<Record<string, unknown>>;
  t.is(messages.length, 3);
  t.is(messages[0]!.content, "using key [REDACTED API KEY] now");
  t.deepEqual(messages[1]!.input, {
    command: "curl -H 'Authorization: Bearer [REDACTED]' x",
    nested: { token: "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
  });
  // The original's order: the connection string first, then the whole assignment up to the first space.
  t.is(messages[2]!.output, "[REDACTED CREDENTIAL] CONNECTION STRING]@db/x\n[REDACTED AWS KEY]");
  t.false(JSON.stringify(await query(stack.db.url, "SELECT * FROM taskqueue.task_message WHERE task_id = $1", [task.id])).includes("sk-abcdef"));
  const published = await waitFor("task.messages", async () => (await stack.events.read("task.messages")).find((e) => e.event.task!.taskId === task.id));
  // The event names the batch; the (redacted) bodies are read from the service.
  t.like(published.event, { firstSeq: 1, lastSeq: 3, count: 3, messages: [] });
  const since = await get(token, `/tasks/${task.id}/messages?since=2`);
  t.deepEqual(
    (since.json as Array<{ seq: number }>).map((m) => m.seq),
    [3],
  );
  t.deepEqual((await get(token, `/tasks/${task.id}/messages?since=x`)).json, { error: "invalid since parameter" });
  t.deepEqual((await post(token, `/tasks/${task.id}/messages`, { messages: [{ seq: "1" }] })).json, { error: "invalid request body" });
});

test("usage is replaced per (task, provider, model) and summed per issue", async (t) => {
  const { ws, runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  await claimOverHttp(stack, token, runtimeId);
  const report = (input: number) =>
    post(token, `/tasks/${task.id}/usage`, {
      usage: [
        { provider: "anthropic", model: "opus", input_tokens: input, output_tokens: 5, cache_read_tokens: 1, cache_write_tokens: 2 },
        { provider: "anthropic", model: "haiku", input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
      ],
    });
  t.is((await report(10)).text, '{"status":"ok"}\n');
  await report(100);
  const usage = await http(stack.gatewayUrl, "GET", `/api/issues/${task.issueId}/usage`, {
    token: ws.member.pat,
    headers: { "x-workspace-id": ws.workspaceId },
  });
  t.deepEqual(usage.json, { total_input_tokens: 101, total_output_tokens: 6, total_cache_read_tokens: 1, total_cache_write_tokens: 2, task_count: 1 });
});

test("the task token works on user routes until the task ends, and only in its workspace", async (t) => {
  const { ws, runtimeId, agentId, token } = await setup();
  const other = await seedWorkspace(stack);
  const { task } = await enqueue(stack, agentId);
  const claimed = taskOf(await claimOverHttp(stack, token, runtimeId))!;
  const mat = claimed.auth_token!;
  const read = () => http(stack.gatewayUrl, "GET", `/api/tasks/${task.id}/messages`, { token: mat });
  t.is((await read()).status, 200);
  const foreign = await http(stack.gatewayUrl, "GET", `/api/workspaces/${other.workspaceId}/runtime-profiles`, { token: mat });
  t.is(foreign.status, 403);
  t.is(foreign.text, '{"error":"task token is bound to a different workspace"}');
  t.is((await http(stack.gatewayUrl, "GET", `/api/daemon/workspaces/${ws.workspaceId}/repos`, { token: mat })).status, 401, "not a daemon credential");
  await post(token, `/tasks/${task.id}/start`);
  await post(token, `/tasks/${task.id}/complete`, { output: "done" });
  const after = await waitFor("the revoked task token to be refused", async () => {
    const answer = await read();
    return answer.status === 401 ? answer : undefined;
  });
  t.is(after.text, '{"error":"invalid token"}\n');
});

test("claim cancels a task whose workspace differs from the runtime's (isolation)", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  await query(stack.db.url, "UPDATE taskqueue.task SET workspace_id = $1 WHERE id = $2", [randomUUID(), task.id]);
  const answer = await claimOverHttp(stack, token, runtimeId);
  t.is(answer.status, 500);
  t.is(answer.text, '{"error":"task workspace isolation check failed"}\n');
  const rows = await query<{ status: string }>(stack.db.url, "SELECT status FROM taskqueue.task WHERE id = $1", [task.id]);
  t.is(rows[0]!.status, "cancelled");
});

test("one pending task per (agent, issue): a second enqueue returns the first", async (t) => {
  const { agentId } = await setup();
  const issueId = randomUUID();
  const first = await enqueue(stack, agentId, { issueId });
  const second = await enqueue(stack, agentId, { issueId });
  t.false(first.deduplicated);
  t.true(second.deduplicated);
  t.is(second.task.id, first.task.id);
});

test("the daemon's gc-checks read what the product recorded", async (t) => {
  const { ws, token, agentId } = await setup();
  const issueId = randomUUID();
  const updatedAt = new Date("2026-01-02T03:04:05.678Z");
  await stack.tasks.recordWorkItem({ item: { kind: "issue", id: issueId, workspaceId: ws.workspaceId, status: "done", updatedAt } });
  t.is((await get(token, `/issues/${issueId}/gc-check`)).text, '{"status":"done","updated_at":"2026-01-02T03:04:05.678Z"}\n');
  t.is((await get(token, `/issues/${randomUUID()}/gc-check`)).text, '{"error":"issue not found"}\n');
  t.is((await get(token, "/issues/x/gc-check")).text, '{"error":"invalid issue_id"}\n');
  const { task } = await enqueue(stack, agentId);
  // A Go map in the original: keys sorted.
  t.is((await get(token, `/tasks/${task.id}/gc-check`)).text, '{"completed_at":"0001-01-01T00:00:00Z","status":"queued"}\n');
});
