import { randomUUID } from "node:crypto";
import test from "ava";
import { taskWakePrefix } from "@controlplane/events";
import { LIMITS } from "@controlplane/config";
import { query, waitFor } from "@controlplane/testkit";
import { golden, normalize } from "../support/golden.js";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

// What today's daemon reports beyond the seed's (contract 13.5, 13.9), and
// proof that the seed-era daemon's answers and storage stay as they were.

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

/** Today's daemon sends this on every request (HEAD-DAEMON.md 1.1); the seed-era daemon never does. */
const TODAY = {
  "x-client-capabilities": "skill-bundles-v1,coalesced-comments-v1,execution-manifest-v1,agent-skill-v1,remote-mcp-v1,local-worktree-v1,rpc-v1",
};
const today = (token: string, path: string, body?: unknown) => http(stack.gatewayUrl, "POST", `/api/daemon${path}`, { token, body, headers: TODAY });
const seedEra = (token: string, path: string, body?: unknown) => http(stack.gatewayUrl, "POST", `/api/daemon${path}`, { token, body });
const rawAck = (token: string, taskId: string, rawBody?: string) =>
  http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${taskId}/cancel-ack`, { token, rawBody, headers: TODAY });

type Row = {
  status: string;
  session_id: string | null;
  branch_name: string | null;
  durable_work_dir: string | null;
  session_rollout_missing: boolean;
  retired_session_id: string | null;
  error: string | null;
  failure_reason: string | null;
  wait_reason: string | null;
  result: Record<string, unknown> | null;
};
const row = async (taskId: string) =>
  (
    await query<Row>(
      stack.db.url,
      `SELECT status, session_id, branch_name, durable_work_dir, session_rollout_missing, retired_session_id, error,
              failure_reason, wait_reason, result FROM taskqueue.task WHERE id = $1`,
      [taskId],
    )
  )[0]!;

async function setup() {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  return { ws, runtimeId, agentId, token: ws.member.pat };
}

/** A task of the agent, claimed and (unless told otherwise) started. */
async function running(s: Awaited<ReturnType<typeof setup>>, extra: Parameters<typeof enqueue>[2] = {}, start = true) {
  const { task } = await enqueue(stack, s.agentId, extra);
  const claimed = await claimOverHttp(stack, s.token, s.runtimeId);
  if ((claimed.json as { task: { id: string } | null }).task?.id !== task.id) throw new Error(`claim: ${claimed.text}`);
  if (start) await seedEra(s.token, `/tasks/${task.id}/start`);
  return task;
}

test("complete from today's daemon stores branch, durable dir and its result keys, and answers today's task (golden, H-41)", async (t) => {
  const s = await setup();
  const task = await running(s);
  const answer = await today(s.token, `/tasks/${task.id}/complete`, {
    output: "Done",
    pr_url: "https://github.com/acme/app/pull/9",
    session_id: "sess-9",
    work_dir: "/home/ada/multica/w/app",
    branch_name: "agent/coder/fix-login",
    durable_work_dir: "/Users/ada/code/app",
    retired_session_id: "sess-8",
  });
  t.is(answer.status, 200);
  const body = normalize(answer.text, { task: task.id, agent: s.agentId, runtime: s.runtimeId, workspace: s.ws.workspaceId, issue: task.issueId! });
  t.is(body, golden(new URL("golden/complete-today.json", import.meta.url), body));
  t.like(await row(task.id), {
    status: "completed",
    session_id: "sess-9",
    branch_name: "agent/coder/fix-login",
    durable_work_dir: "/Users/ada/code/app",
    retired_session_id: "sess-8",
    session_rollout_missing: false,
  });
  t.deepEqual((await row(task.id)).result, {
    output: "Done",
    pr_url: "https://github.com/acme/app/pull/9",
    session_id: "sess-9",
    work_dir: "/home/ada/multica/w/app",
    branch_name: "agent/coder/fix-login",
    durable_work_dir: "/Users/ada/code/app",
    retired_session_id: "sess-8",
  });

  // H-41: a complete with neither leaves both empty; the receipt is still there.
  const plain = await running(s);
  const answered = await today(s.token, `/tasks/${plain.id}/complete`, { output: "ok" });
  t.like(answered.json as object, { status: "completed", delivered_comment_ids: [] });
  t.false("branch_name" in (answered.json as object));
  t.like(await row(plain.id), { branch_name: null, durable_work_dir: null, retired_session_id: null });
  t.deepEqual(Object.keys((await row(plain.id)).result!).sort(), ["output", "pr_url", "session_id", "work_dir"]);
});

test("fail from today's daemon stores branch and durable dir; a missing rollout keeps no session (golden, H-41)", async (t) => {
  const s = await setup();
  const task = await running(s);
  await seedEra(s.token, `/tasks/${task.id}/session`, { session_id: "sess-1", work_dir: "/tmp/w" });
  const answer = await today(s.token, `/tasks/${task.id}/fail`, {
    error: "Error: exit status 1",
    branch_name: "agent/coder/partial",
    durable_work_dir: "/Users/ada/code/app",
    session_rollout_missing: true,
  });
  t.is(answer.status, 200);
  const body = normalize(answer.text, { task: task.id, agent: s.agentId, runtime: s.runtimeId, workspace: s.ws.workspaceId, issue: task.issueId! });
  t.is(body, golden(new URL("golden/fail-today.json", import.meta.url), body));
  t.like(await row(task.id), {
    status: "failed",
    failure_reason: "agent_error.process_failure",
    session_id: null,
    session_rollout_missing: true,
    branch_name: "agent/coder/partial",
    durable_work_dir: "/Users/ada/code/app",
  });
});

test("the seed-era daemon's complete and fail are the seed's: its branch_name is ignored, its answers carry no new keys", async (t) => {
  const s = await setup();
  const task = await running(s);
  const completed = await seedEra(s.token, `/tasks/${task.id}/complete`, { output: "ok", branch_name: "fix-login", session_id: "s" });
  t.is(completed.status, 200);
  for (const key of ["branch_name", "durable_work_dir", "relative_durable_work_dir", "delivered_comment_ids"]) {
    t.false(completed.text.includes(`"${key}"`), key);
  }
  t.like(await row(task.id), { branch_name: null, session_id: "s" });
  t.deepEqual((await row(task.id)).result, { output: "ok", pr_url: "", session_id: "s", work_dir: "" });

  const failing = await running(s);
  const failed = await seedEra(s.token, `/tasks/${failing.id}/fail`, { error: "boom", branch_name: "x", durable_work_dir: "/d" });
  t.false(failed.text.includes("delivered_comment_ids"));
  t.like(await row(failing.id), { status: "failed", branch_name: null, durable_work_dir: null });
});

test("a retired session and a session whose rollout is missing are never offered for resume again", async (t) => {
  const s = await setup();
  const issueId = randomUUID();
  const first = await running(s, { issueId });
  await today(s.token, `/tasks/${first.id}/complete`, { output: "one", session_id: "sess-old", work_dir: "/w/old" });
  // The next run resumes sess-old, finds its rollout gone, retires it and reports the failure.
  const second = await running(s, { issueId });
  const resumed = await row(second.id);
  t.is(resumed.status, "running");
  await today(s.token, `/tasks/${second.id}/fail`, {
    error: "Error: exit status 1",
    session_id: "sess-new",
    session_rollout_missing: true,
    retired_session_id: "sess-old",
  });
  t.like(await row(first.id), { status: "completed", session_id: null }, "the retired session is nobody's resume pointer");
  t.like(await row(second.id), { session_id: null, retired_session_id: "sess-old", session_rollout_missing: true });
  const third = await enqueue(stack, s.agentId, { issueId });
  const claimed = await claimOverHttp(stack, s.token, s.runtimeId);
  const claimedTask = (claimed.json as { task: Record<string, unknown> }).task;
  t.is(claimedTask.id, third.task.id);
  t.false("prior_session_id" in claimedTask, "nothing to resume");
});

test("complete and fail answer 500, not 400, when the write fails underneath, so the daemon retries (HC-9)", async (t) => {
  const s = await setup();
  const completing = await running(s);
  const failing = await running(s);
  const ids = `'${completing.id}', '${failing.id}'`;
  await query(
    stack.db.url,
    `CREATE FUNCTION taskqueue.test_refuse_terminal() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF NEW.id IN (${ids}) AND NEW.status IN ('completed', 'failed') THEN RAISE EXCEPTION 'injected failure'; END IF;
       RETURN NEW;
     END $$`,
  );
  await query(
    stack.db.url,
    "CREATE TRIGGER test_refuse_terminal BEFORE UPDATE ON taskqueue.task FOR EACH ROW EXECUTE FUNCTION taskqueue.test_refuse_terminal()",
  );
  try {
    const completed = await today(s.token, `/tasks/${completing.id}/complete`, { output: "ok" });
    t.is(completed.status, 500);
    t.is(completed.text, '{"error":"failed to complete task"}\n');
    const failed = await today(s.token, `/tasks/${failing.id}/fail`, { error: "boom" });
    t.is(failed.status, 500);
    t.is(failed.text, '{"error":"failed to fail task"}\n');
    t.is((await row(completing.id)).status, "running", "nothing was written");
  } finally {
    await query(stack.db.url, "DROP TRIGGER test_refuse_terminal ON taskqueue.task");
    await query(stack.db.url, "DROP FUNCTION taskqueue.test_refuse_terminal()");
  }
  // The daemon's retry then lands.
  t.like((await today(s.token, `/tasks/${completing.id}/complete`, { output: "ok" })).json as object, { status: "completed" });
  t.like((await today(s.token, `/tasks/${failing.id}/fail`, { error: "boom" })).json as object, { status: "failed" });
});

test("a complete whose strings contain NUL answers 200 and completes, NUL removed (H-45)", async (t) => {
  const s = await setup();
  const task = await running(s);
  const answer = await today(s.token, `/tasks/${task.id}/complete`, {
    output: "a\u0000b",
    pr_url: "https://x/\u0000pr",
    session_id: "s\u00001",
    work_dir: "/w\u0000",
    branch_name: "b\u0000r",
    durable_work_dir: "/d\u0000",
    retired_session_id: "\u0000old",
  });
  t.is(answer.status, 200);
  t.like(await row(task.id), { status: "completed", session_id: "s1", branch_name: "br", durable_work_dir: "/d", retired_session_id: "old" });
  t.like((await row(task.id)).result!, { output: "ab", pr_url: "https://x/pr", work_dir: "/w" });
});

test("today's fields are bounded: past a bound complete and fail answer 400 naming it, and nothing changes", async (t) => {
  const s = await setup();
  const task = await running(s);
  const long = "b".repeat(LIMITS.PATH_CHARS + 1);
  const complete = await today(s.token, `/tasks/${task.id}/complete`, { output: "x", branch_name: long });
  t.is(complete.status, 400);
  t.is(complete.text, `{"error":"branch_name: too long (at most ${LIMITS.PATH_CHARS} characters)"}\n`);
  const fail = await today(s.token, `/tasks/${task.id}/fail`, { error: "x", retired_session_id: long });
  t.is(fail.text, `{"error":"retired_session_id: too long (at most ${LIMITS.PATH_CHARS} characters)"}\n`);
  t.is((await today(s.token, `/tasks/${task.id}/fail`, { error: "x", session_rollout_missing: "yes" })).text, '{"error":"invalid request body"}\n');
  t.is((await row(task.id)).status, "running");
});

test("complete and fail each wake the task's runtime exactly once, without a task id (H-44)", async (t) => {
  const s = await setup();
  const completing = await running(s);
  const failing = await running(s);
  const seen: string[] = [];
  const subscription = stack.events.nc.subscribe(`${taskWakePrefix(stack.events.subjectRoot)}.${s.runtimeId}`, {
    callback: (_error, message) => {
      seen.push(message.string());
    },
  });
  try {
    await stack.events.nc.flush();
    await today(s.token, `/tasks/${completing.id}/complete`, { output: "ok" });
    await today(s.token, `/tasks/${failing.id}/fail`, { error: "boom" });
    // A replay frees nothing and wakes nobody.
    await today(s.token, `/tasks/${completing.id}/complete`, { output: "ok" });
    // A marker wake-up (an enqueue names its task) after them: everything before it has arrived.
    const marker = (await enqueue(stack, s.agentId)).task;
    await waitFor("the marker wake-up", async () => seen.includes(marker.id) || undefined);
    t.deepEqual(seen, ["", "", marker.id]);
  } finally {
    subscription.unsubscribe();
  }
});

test("cancel-ack on a cancelled task writes branch, dir and error once; {} and replays change nothing (H-42)", async (t) => {
  const s = await setup();
  const task = await running(s);
  await stack.tasks.cancelTask({ taskId: task.id });
  const empty = await today(s.token, `/tasks/${task.id}/cancel-ack`, {});
  t.is(empty.status, 200);
  t.is(empty.text, '{"status":"ok"}\n');

  t.is((await today(s.token, `/tasks/${task.id}/cancel-ack`, { branch_name: " agent/coder/wip ", durable_work_dir: "/Users/ada/code/app" })).status, 200);
  t.like(await row(task.id), { status: "cancelled", branch_name: "agent/coder/wip", durable_work_dir: "/Users/ada/code/app", error: null });
  const ack = { error_message: "work preserved in agent/coder/wip", failure_reason: "cancelled" };
  t.is((await today(s.token, `/tasks/${task.id}/cancel-ack`, ack)).status, 200);
  t.like(await row(task.id), { error: "work preserved in agent/coder/wip", failure_reason: "cancelled" });

  // Nothing stored is overwritten, and a replay is the same 200.
  const other = { branch_name: "other", durable_work_dir: "/other", error_message: "other", failure_reason: "other" };
  t.is((await today(s.token, `/tasks/${task.id}/cancel-ack`, other)).text, '{"status":"ok"}\n');
  t.is((await today(s.token, `/tasks/${task.id}/cancel-ack`, ack)).text, '{"status":"ok"}\n');
  t.like(await row(task.id), {
    branch_name: "agent/coder/wip",
    durable_work_dir: "/Users/ada/code/app",
    error: "work preserved in agent/coder/wip",
    failure_reason: "cancelled",
  });

  // task.cancelled: the cancel, then once per ack that wrote (two), never for the others.
  const marker = (await enqueue(stack, s.agentId)).task;
  await stack.tasks.cancelTask({ taskId: marker.id });
  await waitFor("the marker", async () => (await stack.events.read("task.cancelled")).some((e) => e.event.task!.taskId === marker.id));
  t.is((await stack.events.read("task.cancelled")).filter((e) => e.event.task!.taskId === task.id).length, 3);
});

test("cancel-ack after a completion or a failure writes nothing and answers 200 (H-42)", async (t) => {
  const s = await setup();
  const completed = await running(s);
  await today(s.token, `/tasks/${completed.id}/complete`, { output: "ok" });
  const failed = await running(s);
  await today(s.token, `/tasks/${failed.id}/fail`, { error: "boom", failure_reason: "agent_error" });
  const queued = (await enqueue(stack, s.agentId)).task;
  const late = { branch_name: "late", durable_work_dir: "/late", error_message: "late", failure_reason: "late" };
  for (const task of [completed, failed, queued]) {
    t.is((await today(s.token, `/tasks/${task.id}/cancel-ack`, late)).text, '{"status":"ok"}\n');
  }
  t.like(await row(completed.id), { status: "completed", branch_name: null, durable_work_dir: null, error: null });
  t.like(await row(failed.id), { status: "failed", branch_name: null, error: "boom", failure_reason: "agent_error" });
  t.like(await row(queued.id), { status: "queued", branch_name: null, error: null });
});

test("cancel-ack reads its body as the original did: optional, undecodable ignored, a wrong-typed field skipped, NUL removed", async (t) => {
  const s = await setup();
  const task = await running(s, {}, false);
  await stack.tasks.cancelTask({ taskId: task.id });
  for (const body of [undefined, "", "null", "[1,2]", '{"branch_name":', "not json"]) {
    const answer = await rawAck(s.token, task.id, body);
    t.is(answer.status, 200, String(body));
    t.is(answer.text, '{"status":"ok"}\n');
  }
  t.like(await row(task.id), { branch_name: null, durable_work_dir: null, error: null });
  t.is((await rawAck(s.token, task.id, '{"branch_name":7,"durable_work_dir":"/d\\u0000ir","error_message":"  "}')).status, 200);
  t.like(await row(task.id), { branch_name: null, durable_work_dir: "/dir", error: null }, "a blank error is not written");
  // Our bounds still hold (the original had none).
  const long = await today(s.token, `/tasks/${task.id}/cancel-ack`, { failure_reason: "r".repeat(LIMITS.NAME_CHARS + 1) });
  t.is(long.status, 400);
  t.is(long.text, `{"error":"failure_reason: too long (at most ${LIMITS.NAME_CHARS} characters)"}\n`);
});

test("cancel-ack is T-gated: bad id 400, unknown 404 task not found, another workspace's daemon token 404 not found (H-40)", async (t) => {
  const s = await setup();
  const task = await running(s);
  await stack.tasks.cancelTask({ taskId: task.id });
  t.is((await today(s.token, "/tasks/nope/cancel-ack", {})).text, '{"error":"invalid task_id"}\n');
  const unknown = await today(s.token, `/tasks/${randomUUID()}/cancel-ack`, {});
  t.is(unknown.status, 404);
  t.is(unknown.text, '{"error":"task not found"}\n');

  const other = await seedWorkspace(stack);
  const foreign = await stack.identity.issueDaemonToken({ workspaceId: other.workspaceId, daemonId: "d", ttlSeconds: 60 });
  const refused = await today(foreign.token, `/tasks/${task.id}/cancel-ack`, { branch_name: "x" });
  t.is(refused.status, 404);
  t.is(refused.text, '{"error":"not found"}\n');
  t.is((await row(task.id)).branch_name, null);

  const own = await stack.identity.issueDaemonToken({ workspaceId: s.ws.workspaceId, daemonId: "d", ttlSeconds: 60 });
  t.is((await today(own.token, `/tasks/${task.id}/cancel-ack`, { branch_name: "x" })).text, '{"status":"ok"}\n');
  t.is((await today(own.token, `/tasks/${task.id}/cancel-ack`, { branch_name: "y" })).text, '{"status":"ok"}\n');
  t.is((await row(task.id)).branch_name, "x");
});

test("usage stores cost_usd_ticks, replaced on each report; zero, negative or absent is unknown (HC-8)", async (t) => {
  const s = await setup();
  const task = await running(s);
  const cost = async () =>
    (await query<{ cost_usd_ticks: string | null }>(stack.db.url, "SELECT cost_usd_ticks FROM taskqueue.task_usage WHERE task_id = $1", [task.id]))[0]!
      .cost_usd_ticks;
  const report = (extra: Record<string, unknown>) =>
    today(s.token, `/tasks/${task.id}/usage`, {
      usage: [{ provider: "anthropic", model: "opus", input_tokens: 10, output_tokens: 5, cache_read_tokens: 0, cache_write_tokens: 0, ...extra }],
    });
  t.is((await report({ cost_usd_ticks: 0 })).text, '{"status":"ok"}\n');
  t.is(await cost(), null);
  await report({ cost_usd_ticks: 3_310_000_000 });
  t.is(await cost(), "3310000000");
  await report({ cost_usd_ticks: 7 });
  t.is(await cost(), "7", "replaced, not added");
  await report({ cost_usd_ticks: -5 });
  t.is(await cost(), null);
  await report({ cost_usd_ticks: 12 });
  await report({});
  t.is(await cost(), null, "a report without a cost replaces it with unknown");
  t.is((await report({ cost_usd_ticks: 1.5 })).text, '{"error":"invalid request body"}\n');
});

test("wait-local-directory drops the seed daemon's absolute-path reason and keeps today's display name", async (t) => {
  const s = await setup();
  const reasonOf = async (reason: string, send: typeof today) => {
    const task = await running(s, {}, false);
    const answer = await send(s.token, `/tasks/${task.id}/wait-local-directory`, { reason });
    t.is(answer.status, 200);
    const stored = (await row(task.id)).wait_reason;
    await stack.tasks.cancelTask({ taskId: task.id });
    return { answer, stored };
  };
  t.is((await reasonOf("local_directory /Users/ada/code/app (held by task 1234abcd)", seedEra)).stored, null);
  t.is((await reasonOf("local_directory C:\\Users\\ada\\app", seedEra)).stored, null);
  t.is((await reasonOf("local_directory \\\\host\\share\\app", seedEra)).stored, null);
  // A directory named "local_directory" is a label, not a path.
  t.is((await reasonOf(" local_directory (held by task 1234abcd) ", seedEra)).stored, "local_directory (held by task 1234abcd)");
  const current = await reasonOf("app (held by task 1234abcd)", today);
  t.is(current.stored, "app (held by task 1234abcd)");
  t.like(current.answer.json as object, { status: "waiting_local_directory", delivered_comment_ids: [] });
  const seed = await reasonOf("app", seedEra);
  t.false(seed.answer.text.includes("delivered_comment_ids"), "the seed-era answer is unchanged");
});

test("session pins a cancelled task that has no session yet, and never replaces one", async (t) => {
  const s = await setup();
  const task = await running(s);
  await stack.tasks.cancelTask({ taskId: task.id });
  const pinned = await today(s.token, `/tasks/${task.id}/session`, { session_id: "late-sess", work_dir: "/w" });
  t.is(pinned.status, 204);
  t.is(pinned.text, "");
  t.like(await row(task.id), { status: "cancelled", session_id: "late-sess" });
  t.is((await today(s.token, `/tasks/${task.id}/session`, { session_id: "other" })).status, 204);
  t.is((await row(task.id)).session_id, "late-sess");
});
