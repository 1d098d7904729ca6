import { randomUUID } from "node:crypto";
import test from "ava";
import { closeEventBus, connectEventBus, encodeEvent, EventMeta, subjectFor, type EventBus } from "@controlplane/events";
import { NATS_URL, query, waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

let stack: Stack;
let bus: EventBus;
test.before(async () => {
  // Every duration short, so timeouts and grace periods pass within a test.
  stack = await startStack({
    CLAIM_RECOVERY_WINDOW_MS: "600",
    // Shorter than the window: the window, not the prepare lease, times these re-deliveries.
    PREPARE_LEASE_MS: "500",
    DISPATCH_TIMEOUT_MS: "1500",
    RUNNING_TIMEOUT_MS: "1500",
    QUEUED_TTL_MS: "60000",
    TASK_SWEEP_INTERVAL_MS: "200",
    DEREGISTER_GRACE_MS: "500",
  });
  bus = await connectEventBus({ url: NATS_URL, name: "test", stream: stack.events.stream, subjectRoot: stack.events.subjectRoot });
});
test.after.always(async () => {
  if (bus) await closeEventBus(bus);
  await stack?.stop();
});

async function setup() {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  return { ws, runtimeId, agentId, token: ws.member.pat };
}

const statusOf = async (taskId: string) =>
  (
    await query<{ status: string; failure_reason: string | null; error: string | null }>(
      stack.db.url,
      "SELECT status, failure_reason, error FROM taskqueue.task WHERE id = $1",
      [taskId],
    )
  )[0]!;

const childrenOf = (taskId: string) =>
  query<{ id: string; status: string; attempt: number; session_id: string | null }>(
    stack.db.url,
    "SELECT id, status, attempt, session_id FROM taskqueue.task WHERE parent_task_id = $1",
    [taskId],
  );

test("a claim answer that never arrived is handed out again after the recovery window, with a new token", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId);
  const claimedBefore = Date.now();
  const first = (await claimOverHttp(stack, token, runtimeId)).json as { task: { id: string; auth_token: string } };
  const early = await claimOverHttp(stack, token, runtimeId);
  // Only meaningful while the window (CLAIM_RECOVERY_WINDOW_MS) has surely not passed; a loaded machine may take longer.
  if (Date.now() - claimedBefore < Number(stack.env.CLAIM_RECOVERY_WINDOW_MS)) t.is(early.text, '{"task":null}\n', "not before the window");
  else t.log("the machine was slower than the recovery window; the early claim is not checked");
  const again = await waitFor("the re-delivery", async () => {
    const answer = (await claimOverHttp(stack, token, runtimeId)).json as { task: { id: string; auth_token: string } | null };
    return answer.task ?? undefined;
  });
  t.is(again.id, task.id);
  t.not(again.auth_token, first.task.auth_token);
  const dispatched = await waitFor("one dispatch event only", async () =>
    (await stack.events.read("task.dispatched")).filter((e) => e.event.task!.taskId === task.id),
  );
  t.is(dispatched.length, 1, "a re-delivery is not a new dispatch");
});

test("the sweeper fails tasks dispatched too long and queues their retry once", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const { task } = await enqueue(stack, agentId, { maxAttempts: 2 });
  await claimOverHttp(stack, token, runtimeId);
  await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/start`, { token });
  const failed = await waitFor("the running timeout", async () => {
    const row = await statusOf(task.id);
    return row.status === "failed" ? row : undefined;
  });
  t.deepEqual(failed, { status: "failed", failure_reason: "timeout", error: "task timed out" });
  const [child] = await childrenOf(task.id);
  t.like(child!, { status: "queued", attempt: 2 });
  // The retry runs out the same way and is not retried again (attempt 2 of 2).
  await claimOverHttp(stack, token, runtimeId);
  await waitFor("the retry's dispatch timeout", async () => (await statusOf(child!.id)).status === "failed", { timeoutMs: 8_000 });
  t.deepEqual(await childrenOf(child!.id), [], "no endless retries");
});

test("runtime.offline (stale): in-flight tasks fail with runtime_offline; issue tasks are retried", async (t) => {
  const { ws, runtimeId, agentId, token } = await setup();
  const issueTask = (await enqueue(stack, agentId)).task;
  const autopilotTask = (await enqueue(stack, agentId, { issueId: undefined, autopilotRunId: randomUUID() })).task;
  await claimOverHttp(stack, token, runtimeId);
  await claimOverHttp(stack, token, runtimeId);
  await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${issueTask.id}/session`, { token, body: { session_id: "s-1", work_dir: "/w" } });
  const eventId = randomUUID();
  const event = { meta: EventMeta.fromPartial({ eventId, workspaceId: ws.workspaceId, occurredAt: new Date() }), runtimeId, reason: 2 };
  await bus.js.publish(subjectFor(bus.subjectRoot, "runtime.offline"), encodeEvent("runtime.offline", event), { msgID: eventId });
  const failed = await waitFor("both tasks failed", async () => {
    const rows = [await statusOf(issueTask.id), await statusOf(autopilotTask.id)];
    return rows.every((r) => r.status === "failed") ? rows : undefined;
  });
  t.deepEqual(
    failed.map((r) => [r.failure_reason, r.error]),
    [
      ["runtime_offline", "runtime went offline"],
      ["runtime_offline", "runtime went offline"],
    ],
  );
  const [retry] = await childrenOf(issueTask.id);
  t.like(retry!, { status: "queued", attempt: 2, session_id: "s-1" });
  t.deepEqual(await childrenOf(autopilotTask.id), [], "autopilot runs are not retried");
});

test("deregister: in-flight tasks get a grace period, then fail unless the daemon came back", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const finishing = (await enqueue(stack, agentId)).task;
  const abandoned = (await enqueue(stack, agentId)).task;
  await claimOverHttp(stack, token, runtimeId);
  await claimOverHttp(stack, token, runtimeId);
  await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${finishing.id}/start`, { token });
  const deregisteredAt = Date.now();
  await http(stack.gatewayUrl, "POST", "/api/daemon/deregister", { token, body: { runtime_ids: [runtimeId] } });
  // The daemon still reports a task finishing during its shutdown.
  const completed = await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${finishing.id}/complete`, { token, body: { output: "made it" } });
  t.like(completed.json as object, { status: "completed" });
  const failed = await waitFor("the abandoned task to fail", async () => {
    const row = await statusOf(abandoned.id);
    return row.status === "failed" ? row : undefined;
  });
  t.true(Date.now() - deregisteredAt >= Number(stack.env.DEREGISTER_GRACE_MS), "not before the grace period");
  t.is(failed.failure_reason, "runtime_offline");
  t.is((await statusOf(finishing.id)).status, "completed");
});

test("recover-orphans fails the runtime's in-flight tasks and reports retries", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  const a = (await enqueue(stack, agentId)).task;
  const b = (await enqueue(stack, agentId, { issueId: undefined, chatSessionId: randomUUID() })).task;
  await enqueue(stack, agentId);
  await claimOverHttp(stack, token, runtimeId);
  await claimOverHttp(stack, token, runtimeId);
  const answer = await http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtimeId}/recover-orphans`, { token, body: {} });
  t.is(answer.text, '{"orphaned":2,"retried":2}\n');
  t.like(await statusOf(a.id), { status: "failed", failure_reason: "runtime_recovery", error: "daemon restarted while task was in flight" });
  t.like(await statusOf(b.id), { status: "failed", failure_reason: "runtime_recovery" });
  t.is((await http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtimeId}/recover-orphans`, { token, body: {} })).text, '{"orphaned":0,"retried":0}\n');
});

test("a legacy merge moves the old runtime's tasks to the new runtime", async (t) => {
  const ws = await seedWorkspace(stack);
  const oldRuntime = await seedRuntime(stack, ws, "oldhost.local");
  const agentId = await seedAgent(stack, ws, oldRuntime);
  const { task } = await enqueue(stack, agentId);
  const registered = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token: ws.member.pat,
    body: {
      workspace_id: ws.workspaceId,
      daemon_id: randomUUID(),
      legacy_daemon_ids: ["OLDHOST.local"],
      runtimes: [{ type: "claude", version: "1", status: "online" }],
    },
  });
  const newRuntime = (registered.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
  const claimed = await waitFor("the task to be claimable on the new runtime", async () => {
    const answer = (await claimOverHttp(stack, ws.member.pat, newRuntime)).json as { task: { id: string; runtime_id: string } | null };
    return answer.task ?? undefined;
  });
  t.is(claimed.id, task.id);
  t.is(claimed.runtime_id, newRuntime);
});

test("a daemon extending its prepare lease keeps its task past the recovery window and the dispatch timeout; once it stops, the task is free again", async (t) => {
  const { runtimeId, agentId, token } = await setup();
  // One attempt: a timed-out task has no retry to be handed out instead.
  const { task } = await enqueue(stack, agentId, { maxAttempts: 1 });
  const first = (await claimOverHttp(stack, token, runtimeId)).json as { task: { id: string; dispatched_at: string } };
  t.is(first.task.id, task.id);
  const lease = Number(stack.env.PREPARE_LEASE_MS);
  const until = Date.now() + Number(stack.env.DISPATCH_TIMEOUT_MS) + 3 * Number(stack.env.TASK_SWEEP_INTERVAL_MS);
  // As the daemon does (it extends every 15 s against a 45 s lease): extend, look, extend again, well within each lease.
  let last = Date.now();
  let longestGap = 0;
  const seen: string[] = [];
  while (Date.now() < until) {
    const extended = await http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtimeId}/tasks/${task.id}/prepare-lease`, { token, body: {} });
    longestGap = Math.max(longestGap, Date.now() - last);
    last = Date.now();
    seen.push(`${extended.status} ${(await claimOverHttp(stack, token, runtimeId)).text}`);
  }
  const [row] = await query<{ status: string; dispatched_at: Date }>(stack.db.url, "SELECT status, dispatched_at FROM taskqueue.task WHERE id = $1", [task.id]);
  if (longestGap < lease) {
    t.deepEqual([...new Set(seen)], ['200 {"task":null}\n'], "never handed out again while the lease was kept");
    t.is(row!.status, "dispatched", "not timed out");
    t.is(row!.dispatched_at.toISOString().slice(0, 19), first.task.dispatched_at.slice(0, 19), "not re-dispatched");
  } else {
    t.log(`an extension came ${longestGap} ms after the previous one, past the ${lease} ms lease; the kept-lease checks are skipped`);
  }
  // The daemon is gone: the lease runs out and the task is free again: the next claim re-delivers it (a
  // newer dispatched_at), or the sweeper's dispatch timeout fails it, whichever comes first.
  const outcome = await waitFor("the re-delivery or the timeout", async () => {
    await claimOverHttp(stack, token, runtimeId);
    const [now] = await query<{ status: string; dispatched_at: Date | null }>(stack.db.url, "SELECT status, dispatched_at FROM taskqueue.task WHERE id = $1", [
      task.id,
    ]);
    if (now!.status === "failed") return "timed out";
    return now!.dispatched_at && now!.dispatched_at.getTime() > row!.dispatched_at.getTime() ? "re-delivered" : undefined;
  });
  t.true(["re-delivered", "timed out"].includes(outcome), outcome);
});
