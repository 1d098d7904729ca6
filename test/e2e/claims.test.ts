import { randomUUID } from "node:crypto";
import test from "ava";
import { CLAIM_ANSWER_SLACK_MS } from "@controlplane/config";
import { registry as metrics } from "@controlplane/metrics";
import { query, waitFor } from "@controlplane/testkit";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

let stack: Stack;
test.before(async () => {
  // These tests race claims, not liveness: their runtimes never beat, and
  // seeding many tasks on a loaded machine can outlast the claim's default
  // freshness window (contract §13.3), after which every claim would answer null.
  stack = await startStack({ CLAIM_RUNTIME_FRESHNESS_MS: String(24 * 3_600_000) });
});
test.after.always(async () => {
  await stack?.stop();
});

/** Runs `work` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
    }),
  );
}

// Ten claims per claimer on average: enough for every claimer to race the others many times over.
const CLAIMERS = 64;
const TASKS = CLAIMERS * 10;

test.serial(`${CLAIMERS} concurrent claimers over ${TASKS} tasks: every task is claimed exactly once`, async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  // 20 agents with room for every task, each task on its own issue: nothing but the race limits claims.
  const agents = await Promise.all(Array.from({ length: 20 }, () => seedAgent(stack, ws, runtimeId, { maxConcurrentTasks: 1_000 })));
  const enqueued: string[] = [];
  await pool(
    Array.from({ length: TASKS }, (_, i) => agents[i % agents.length]!),
    32,
    async (agentId) => {
      enqueued.push((await enqueue(stack, agentId)).task.id);
    },
  );

  const claimed: string[] = [];
  await Promise.all(
    Array.from({ length: CLAIMERS }, async () => {
      for (;;) {
        const { claimed: answer } = await stack.tasks.claimTask({ runtimeId, waitMs: 0 });
        if (!answer) return;
        claimed.push(answer.task!.id);
      }
    }),
  );
  t.is(claimed.length, TASKS, "no task handed out twice, none left behind");
  t.is(new Set(claimed).size, TASKS);
  t.deepEqual([...claimed].sort(), [...enqueued].sort());
  const rows = await query<{ status: string; count: number }>(
    stack.db.url,
    "SELECT status, count(*)::int AS count FROM taskqueue.task WHERE workspace_id = $1 GROUP BY status",
    [ws.workspaceId],
  );
  t.deepEqual(rows, [{ status: "dispatched", count: TASKS }]);
  const tokens = await query<{ count: number }>(
    stack.db.url,
    "SELECT count(DISTINCT task_id)::int AS count FROM taskqueue.task_token t JOIN taskqueue.task k ON k.id = t.task_id WHERE k.workspace_id = $1",
    [ws.workspaceId],
  );
  t.is(tokens[0]!.count, TASKS, "one token per claim");
});

test.serial("an agent's concurrency limit holds across runtimes under racing claims", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeA = await seedRuntime(stack, ws);
  const runtimeB = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeA, { maxConcurrentTasks: 3 });
  const queuedOn = new Map<string, string>();
  for (let i = 0; i < 10; i++) queuedOn.set((await enqueue(stack, agentId)).task.id, runtimeA);
  // The agent moves to runtime B; tasks queued before stay on A.
  await stack.registry.upsertAgent({
    agentId,
    workspaceId: ws.workspaceId,
    runtimeId: runtimeB,
    name: "coder",
    instructions: "",
    customEnv: {},
    customArgs: [],
    runtimeConfigJson: "",
    skills: [],
    maxConcurrentTasks: 3,
    visibility: "",
  });
  for (let i = 0; i < 10; i++) queuedOn.set((await enqueue(stack, agentId)).task.id, runtimeB);

  const claimers = Array.from({ length: 32 }, (_, i) => (i % 2 ? runtimeA : runtimeB));
  const claims = await Promise.all(claimers.map((runtimeId) => stack.tasks.claimTask({ runtimeId, waitMs: 0 })));
  const won = claims.flatMap((c, i) => (c.claimed ? [{ task: c.claimed.task!, claimer: claimers[i]! }] : []));
  t.is(won.length, 3, "never more than the limit in flight");
  t.is(new Set(won.map(({ task }) => task.id)).size, 3);
  // Each runtime got only tasks queued for it: A the ones from before the move, B the ones after.
  t.deepEqual(
    won.map(({ task }) => [queuedOn.get(task.id), task.runtimeId]),
    won.map(({ claimer }) => [claimer, claimer]),
  );
  const inFlight = await query<{ count: number }>(
    stack.db.url,
    "SELECT count(*)::int AS count FROM taskqueue.task WHERE agent_id = $1 AND status = 'dispatched'",
    [agentId],
  );
  t.is(inFlight[0]!.count, 3);

  // Finishing one frees exactly one slot.
  await stack.tasks.startTask({ taskId: won[0]!.task.id });
  await stack.tasks.completeTask({ taskId: won[0]!.task.id, prUrl: "", output: "", sessionId: "", workDir: "", sessionRolloutMissing: false });
  const next = await Promise.all(Array.from({ length: 8 }, () => stack.tasks.claimTask({ runtimeId: runtimeA, waitMs: 0 })));
  t.is(next.filter((c) => c.claimed).length, 1);
});

test.serial("claim order: higher priority first, then older; a runtime never takes another runtime's task", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeA = await seedRuntime(stack, ws);
  const runtimeB = await seedRuntime(stack, ws);
  const onA = await seedAgent(stack, ws, runtimeA, { maxConcurrentTasks: 10 });
  const onB = await seedAgent(stack, ws, runtimeB, { maxConcurrentTasks: 10 });
  const low = (await enqueue(stack, onA, { priority: 1 })).task;
  const highOld = (await enqueue(stack, onA, { priority: 4 })).task;
  const highNew = (await enqueue(stack, onA, { priority: 4 })).task;
  await enqueue(stack, onB, { priority: 4 });
  const order: string[] = [];
  for (;;) {
    const { claimed } = await stack.tasks.claimTask({ runtimeId: runtimeA, waitMs: 0 });
    if (!claimed) break;
    order.push(claimed.task!.id);
  }
  t.deepEqual(order, [highOld.id, highNew.id, low.id]);
});

test.serial("in-flight siblings block: same issue, and quick-create tasks of one agent, go one at a time", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId, { maxConcurrentTasks: 10 });
  const quick = { issueId: undefined, context: { quickCreate: { prompt: "make an issue", requesterId: randomUUID(), attachmentIds: [] } } };
  const q1 = (await enqueue(stack, agentId, quick)).task;
  const q2 = (await enqueue(stack, agentId, quick)).task;
  const first = await stack.tasks.claimTask({ runtimeId, waitMs: 0 });
  t.is(first.claimed!.task!.id, q1.id);
  t.is(first.claimed!.task!.kind, "quick_create");
  t.is((await stack.tasks.claimTask({ runtimeId, waitMs: 0 })).claimed, undefined, "q2 waits for q1");
  await stack.tasks.startTask({ taskId: q1.id });
  await stack.tasks.completeTask({ taskId: q1.id, prUrl: "", output: "", sessionId: "", workDir: "", sessionRolloutMissing: false });
  t.is((await stack.tasks.claimTask({ runtimeId, waitMs: 0 })).claimed!.task!.id, q2.id);
});

test.serial("long-poll: a waiting claim wakes when a task is enqueued", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  const waitSeconds = 10;
  const started = Date.now();
  const waiting = claimOverHttp(stack, ws.member.pat, runtimeId, waitSeconds);
  // Enqueue once the claim is waiting (the services run in this process: read their gauge).
  await waitFor("the claim to wait", async () => {
    const gauge = await metrics.getSingleMetric("taskqueue_long_poll_waiting")!.get();
    return (gauge.values[0]?.value ?? 0) >= 1;
  });
  const enqueuedAt = Date.now();
  const { task } = await enqueue(stack, agentId);
  const answer = await waiting;
  const wokeAfter = Date.now() - enqueuedAt;
  t.is(answer.status, 200);
  t.is((answer.json as { task: { id: string } }).task.id, task.id);
  // Measured from the claim's start: an answer at the deadline would take the whole wait.
  const answeredAfter = Date.now() - started;
  t.true(
    answeredAfter < waitSeconds * 1000,
    `answered ${answeredAfter} ms after the claim (${wokeAfter} ms after the enqueue), before its ${waitSeconds} s deadline`,
  );
});

test.serial("long-poll: with nothing queued the claim answers null at its deadline; without ?wait at once", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  // ?wait counts whole seconds: 1 s is the shortest wait there is.
  const waitMs = 1_000;
  let started = Date.now();
  const waited = await claimOverHttp(stack, ws.member.pat, runtimeId, waitMs / 1000);
  const elapsed = Date.now() - started;
  t.is(waited.text, '{"task":null}\n');
  // Not before the wait (less a twentieth for timer rounding); not past the gateway's deadline for the call, which would be an error.
  t.true(elapsed >= waitMs * 0.95 && elapsed < waitMs + CLAIM_ANSWER_SLACK_MS, `waited ${elapsed} ms for a ${waitMs} ms wait`);
  started = Date.now();
  t.is((await claimOverHttp(stack, ws.member.pat, runtimeId)).text, '{"task":null}\n');
  const immediate = Date.now() - started;
  t.true(immediate < waitMs, `answered after ${immediate} ms: without the opt-in there is no wait, not even the shortest`);
});
