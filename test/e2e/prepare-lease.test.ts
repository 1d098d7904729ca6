import { randomUUID } from "node:crypto";
import test from "ava";
import { query, waitFor } from "@controlplane/testkit";
import { claimAsToday, dispatchedAgo, registerDaemon, taskState, TODAYS_CAPABILITIES, tokenCount } from "../support/claims.js";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { enqueue, seedAgent } from "../support/tasks.js";

// The per-runtime claim of today's daemon (D7, contract §13.3) and the
// prepare lease (N3, §13.4), over real HTTP against the whole plane. The
// recovery window (90 s), lease (45 s) and dispatch timeout (300 s) are the
// contract's: the cases move dispatched_at and the lease in the database, as
// the original's tests do. The sweeper runs every 200 ms.
let stack: Stack;
test.before(async () => {
  stack = await startStack({ CLAIM_LIVENESS_CACHE_TTL_MS: "1", TASK_SWEEP_INTERVAL_MS: "200" });
});
test.after.always(async () => {
  await stack?.stop();
});

async function setup() {
  const ws = await seedWorkspace(stack);
  const { runtimeIds, daemonId } = await registerDaemon(stack, ws);
  const runtimeId = runtimeIds[0]!;
  const agentId = await seedAgent(stack, ws, runtimeId);
  return { ws, runtimeId, daemonId, agentId, token: ws.member.pat };
}

type TaskJson = Record<string, unknown> & { id: string; runtime_id: string; agent?: { id: string }; agent_id: string };
const taskOf = (answer: { json: unknown }) => (answer.json as { task: TaskJson | null }).task;

/** A task dispatched to the setup's runtime (claimed once, its answer "lost"). */
async function dispatchedTask(s: Awaited<ReturnType<typeof setup>>, extra = {}) {
  const { task } = await enqueue(stack, s.agentId, extra);
  const claimed = taskOf(await claimAsToday(stack, s.token, s.runtimeId));
  if (claimed?.id !== task.id) throw new Error("setup: the task was not claimed");
  return task;
}

const extend = (token: string, runtimeId: string, taskId: string, headers: Record<string, string> = {}) =>
  http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtimeId}/tasks/${taskId}/prepare-lease`, { token, body: {}, headers });

test("a claim dispatches with a 45 s lease; the answer always carries the agent and, for today's daemon, the receipt", async (t) => {
  const s = await setup();
  const { task } = await enqueue(stack, s.agentId);
  const answer = await claimAsToday(stack, s.token, s.runtimeId);
  const claimed = taskOf(answer)!;
  t.is(claimed.id, task.id);
  t.is(claimed.agent?.id, claimed.agent_id);
  t.deepEqual(claimed.delivered_comment_ids, []);
  const [row] = await query<{ lease: number }>(
    stack.db.url,
    "SELECT extract(epoch FROM prepare_lease_expires_at - dispatched_at)::float8 AS lease FROM taskqueue.task WHERE id = $1",
    [task.id],
  );
  t.true(Math.abs(row!.lease - 45) < 1, `lease ${row!.lease} s after dispatch`);
});

test("H-23: dispatched 120 s ago, never started, no lease: D7 hands it out again, dispatched just now", async (t) => {
  const s = await setup();
  const task = await dispatchedTask(s);
  await dispatchedAgo(stack, task.id, 120, null);
  t.is(taskOf(await claimAsToday(stack, s.token, s.runtimeId))?.id, task.id);
  const state = await taskState(stack, task.id);
  t.true(state.dispatched_seconds_ago! < 15);
  t.true(state.lease_in_future!);
});

test('H-24: dispatched 75 s ago: {"task":null} and dispatched_at unchanged', async (t) => {
  const s = await setup();
  const task = await dispatchedTask(s);
  await dispatchedAgo(stack, task.id, 75, null);
  t.is((await claimAsToday(stack, s.token, s.runtimeId)).text, '{"task":null}\n');
  t.true((await taskState(stack, task.id)).dispatched_seconds_ago! >= 75);
});

test("H-25: dispatched 240 s ago under a lease 30 s ahead: null, and the lease is still ahead", async (t) => {
  const s = await setup();
  const task = await dispatchedTask(s);
  await dispatchedAgo(stack, task.id, 240, 30);
  t.is((await claimAsToday(stack, s.token, s.runtimeId)).text, '{"task":null}\n');
  const state = await taskState(stack, task.id);
  t.true(state.lease_in_future!);
  t.true(state.dispatched_seconds_ago! >= 240);
});

test("H-26: dispatched 240 s ago, lease ended 5 s ago: re-delivered, with a lease ahead again", async (t) => {
  const s = await setup();
  const task = await dispatchedTask(s);
  await dispatchedAgo(stack, task.id, 240, -5);
  t.is(taskOf(await claimAsToday(stack, s.token, s.runtimeId))?.id, task.id);
  t.true((await taskState(stack, task.id)).lease_in_future!);
});

test("H-27: N3 with another runtime's id answers 404 task not found; with the owning runtime 200 and the lease moves ahead", async (t) => {
  const s = await setup();
  const other = await registerDaemon(stack, s.ws);
  const task = await dispatchedTask(s);
  await dispatchedAgo(stack, task.id, 60, 2);
  const refused = await extend(s.token, other.runtimeIds[0]!, task.id);
  t.is(refused.status, 404);
  t.is(refused.text, '{"error":"task not found"}\n');
  const answer = await extend(s.token, s.runtimeId, task.id, { "x-client-capabilities": TODAYS_CAPABILITIES });
  t.is(answer.status, 200);
  const body = answer.json as Record<string, unknown>;
  t.like(body, { id: task.id, status: "dispatched", runtime_id: s.runtimeId, delivered_comment_ids: [] });
  t.false("auth_token" in body, "a base task, not a claim");
  const [row] = await query<{ ahead: number }>(
    stack.db.url,
    "SELECT extract(epoch FROM prepare_lease_expires_at - now())::float8 AS ahead FROM taskqueue.task WHERE id = $1",
    [task.id],
  );
  t.true(row!.ahead > 40, `lease ${row!.ahead} s ahead`);
});

test("N3 runs R, then T, then the same-runtime check, with the contract's answers", async (t) => {
  const s = await setup();
  const task = await dispatchedTask(s);
  const other = await seedWorkspace(stack);
  const foreign = await registerDaemon(stack, other);
  const expect = async (runtimeId: string, taskId: string, status: number, text: string) => {
    const answer = await extend(s.token, runtimeId, taskId);
    t.is(answer.status, status, `${runtimeId} ${taskId}`);
    t.is(answer.text, text);
  };
  await expect("nope", task.id, 400, '{"error":"invalid runtime_id"}\n');
  await expect(randomUUID(), task.id, 404, '{"error":"runtime not found"}\n');
  await expect(foreign.runtimeIds[0]!, task.id, 404, '{"error":"not found"}\n');
  await expect(s.runtimeId, "nope", 400, '{"error":"invalid task_id"}\n');
  await expect(s.runtimeId, randomUUID(), 404, '{"error":"task not found"}\n');
  // The task's runtime is compared with the path as sent.
  await expect(s.runtimeId.toUpperCase(), task.id, 404, '{"error":"task not found"}\n');
});

test("HC-4: N3 on a running task answers 400 with the original's text; start cleared the lease", async (t) => {
  const s = await setup();
  const task = await dispatchedTask(s);
  await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/start`, { token: s.token });
  t.is((await taskState(stack, task.id)).prepare_lease_expires_at, null);
  const answer = await extend(s.token, s.runtimeId, task.id);
  t.is(answer.status, 400);
  t.is(answer.text, '{"error":"extend task prepare lease: no rows in result set"}\n');
});

test("the lease: wait-local-directory sets it and N3 extends it there; every terminal transition and a claim put back clear it", async (t) => {
  const s = await setup();
  const waiting = await dispatchedTask(s);
  await dispatchedAgo(stack, waiting.id, 10, null);
  await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${waiting.id}/wait-local-directory`, { token: s.token, body: { reason: "repo" } });
  t.like(await taskState(stack, waiting.id), { status: "waiting_local_directory", lease_in_future: true });
  t.is((await extend(s.token, s.runtimeId, waiting.id)).status, 200, "a waiting task takes the lease too");
  await stack.tasks.failTask({ taskId: waiting.id, error: "gave up", failureReason: "agent_error", sessionRolloutMissing: false });
  t.like(await taskState(stack, waiting.id), { status: "failed", prepare_lease_expires_at: null });

  const cancelled = await dispatchedTask(s);
  await stack.tasks.cancelTask({ taskId: cancelled.id });
  t.like(await taskState(stack, cancelled.id), { status: "cancelled", prepare_lease_expires_at: null });

  const completed = await dispatchedTask(s);
  await stack.tasks.startTask({ taskId: completed.id });
  await stack.tasks.completeTask({ taskId: completed.id, prUrl: "", output: "ok", sessionId: "", workDir: "", sessionRolloutMissing: false });
  t.like(await taskState(stack, completed.id), { status: "completed", prepare_lease_expires_at: null });

  const comment = randomUUID();
  const released = await dispatchedTask(s, { triggerCommentId: comment });
  t.deepEqual((await taskState(stack, released.id)).delivered_comment_ids, [comment]);
  t.true((await stack.tasks.releaseClaim({ taskId: released.id, runtimeId: s.runtimeId })).released);
  t.like(await taskState(stack, released.id), { status: "queued", prepare_lease_expires_at: null, dispatched_at: null, delivered_comment_ids: [] });
  t.is(await tokenCount(stack, released.id), 0);
});

test("H-28: dispatched 120 s ago but started: never re-delivered", async (t) => {
  const s = await setup();
  const task = await dispatchedTask(s);
  await query(stack.db.url, "UPDATE taskqueue.task SET started_at = now() - interval '100 s' WHERE id = $1", [task.id]);
  await dispatchedAgo(stack, task.id, 120, null);
  t.is((await claimAsToday(stack, s.token, s.runtimeId)).text, '{"task":null}\n');
});

test("H-29: another runtime's lost answer is not handed to this runtime; the task stays on its own", async (t) => {
  const s = await setup();
  const b = await registerDaemon(stack, s.ws);
  const runtimeB = b.runtimeIds[0]!;
  const agentB = await seedAgent(stack, s.ws, runtimeB);
  const { task } = await enqueue(stack, agentB);
  taskOf(await claimAsToday(stack, s.token, runtimeB));
  await dispatchedAgo(stack, task.id, 120, null);
  t.is((await claimAsToday(stack, s.token, s.runtimeId)).text, '{"task":null}\n');
  t.is((await taskState(stack, task.id)).runtime_id, runtimeB);
});

test("H-30: a re-delivery with nobody to act for answers 500 runtime owner required to mint task token, and cancels", async (t) => {
  const ws = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "ownerless-d7", ttlSeconds: 600 });
  const { runtimeIds } = await registerDaemon(stack, ws, { daemonId: "ownerless-d7", token });
  const agentId = await seedAgent(stack, ws, runtimeIds[0]!, { ownerId: ws.owner.userId });
  const { task } = await enqueue(stack, agentId);
  t.is(taskOf(await claimAsToday(stack, token, runtimeIds[0]!))?.id, task.id, "claimed for the agent's owner");
  await stack.registry.upsertAgent({
    agentId,
    workspaceId: ws.workspaceId,
    runtimeId: runtimeIds[0]!,
    name: "coder",
    instructions: "",
    customEnv: {},
    customArgs: [],
    runtimeConfigJson: "",
    skills: [],
    maxConcurrentTasks: 0,
    visibility: "",
  });
  await dispatchedAgo(stack, task.id, 120, null);
  const answer = await waitFor("the claim to see the agent without owner", async () => {
    const got = await claimAsToday(stack, token, runtimeIds[0]!);
    return got.status === 500 ? got : undefined;
  });
  t.true(answer.text.includes("runtime owner required to mint task token"));
  t.is((await taskState(stack, task.id)).status, "cancelled");
});

test("H-5: a task whose agent is gone is failed invalid_task_identity with the contract's text; D7 answers 409", async (t) => {
  const s = await setup();
  const { task } = await enqueue(stack, s.agentId);
  await query(stack.db.url, "DELETE FROM registry.agent WHERE id = $1", [s.agentId]);
  const answer = await claimAsToday(stack, s.token, s.runtimeId);
  t.is(answer.status, 409);
  t.is(answer.text, '{"error":"task agent no longer exists"}\n');
  t.like(await taskState(stack, task.id), {
    status: "failed",
    failure_reason: "invalid_task_identity",
    error: "Task identity is invalid: the assigned agent no longer exists.",
  });
  t.is(await tokenCount(stack, task.id), 0);
  t.is((await claimAsToday(stack, s.token, s.runtimeId)).text, '{"task":null}\n', "settled: not handed out again");
});

test("the dispatch timeout spares a task under a live lease, and takes it once the lease ended", async (t) => {
  const s = await setup();
  const task = await dispatchedTask(s);
  await dispatchedAgo(stack, task.id, 400, 60);
  // Several sweeper passes (every 200 ms) go by: it stays dispatched.
  const until = Date.now() + 5 * Number(stack.env.TASK_SWEEP_INTERVAL_MS);
  while (Date.now() < until) t.is((await taskState(stack, task.id)).status, "dispatched");
  await dispatchedAgo(stack, task.id, 400, -1);
  const failed = await waitFor("the dispatch timeout", async () => {
    const state = await taskState(stack, task.id);
    return state.status === "failed" ? state : undefined;
  });
  t.like(failed, { failure_reason: "timeout", error: "task timed out", prepare_lease_expires_at: null });
});

test("H-33: the latest finished run reported its session's rollout missing: the next claim says the prior session cannot be resumed", async (t) => {
  const s = await setup();
  const chatSessionId = randomUUID();
  const finish = async (taskId: string, rolloutMissing: boolean) => {
    await stack.tasks.startTask({ taskId });
    await stack.tasks.completeTask({ taskId, prUrl: "", output: "ok", sessionId: "sess-1", workDir: "/w", sessionRolloutMissing: rolloutMissing });
  };
  const first = await dispatchedTask(s, { issueId: undefined, chatSessionId });
  await finish(first.id, true);
  const { task: next } = await enqueue(stack, s.agentId, { issueId: undefined, chatSessionId });
  const claimed = await claimAsToday(stack, s.token, s.runtimeId);
  t.is(taskOf(claimed)?.id, next.id);
  t.is(taskOf(claimed)?.prior_session_resume_unavailable, true);
  // A later run that kept its session clears it; the seed-era daemon never sees the key.
  await finish(next.id, false);
  const { task: third } = await enqueue(stack, s.agentId, { issueId: undefined, chatSessionId });
  const seedEra = await http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${s.runtimeId}/tasks/claim`, { token: s.token, body: {} });
  t.is(taskOf(seedEra)?.id, third.id);
  t.false("prior_session_resume_unavailable" in taskOf(seedEra)!);
  await dispatchedAgo(stack, third.id, 120, null);
  const again = taskOf(await claimAsToday(stack, s.token, s.runtimeId))!;
  t.is(again.id, third.id);
  t.false("prior_session_resume_unavailable" in again, "omitted when false");

  // The same for an issue: keyed by (agent, issue).
  const issueId = randomUUID();
  const onIssue = await dispatchedTask(s, { issueId });
  await finish(onIssue.id, true);
  await enqueue(stack, s.agentId, { issueId });
  t.is(taskOf(await claimAsToday(stack, s.token, s.runtimeId))?.prior_session_resume_unavailable, true);
});
