import { randomUUID } from "node:crypto";
import test from "ava";
import { query, waitFor } from "@controlplane/testkit";
import { batchClaim, dispatchedAgo, lastSeenAgo, registerDaemon, taskState, tasksOf, tokenCount } from "../support/claims.js";
import { http } from "../support/http.js";
import { openSocket, untilWatched } from "../support/socket.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { enqueue, seedAgent } from "../support/tasks.js";

// The batch claim of today's daemon, POST /api/daemon/tasks/claim (contract
// §13.2), over real HTTP against the whole plane. Liveness is read afresh
// by every claim here (the freshness cases move last_seen_at in the database).
// The sweeper is kept out of the way: from its first sweep on (one stale
// threshold after the start, which a loaded machine's slow run reaches) it
// takes a runtime made to look silent offline, and fails its tasks, between
// a test's claim and its check. What it does is sweeper.test.ts's subject.
let stack: Stack;
test.before(async () => {
  stack = await startStack({ CLAIM_LIVENESS_CACHE_TTL_MS: "1", SWEEP_INTERVAL_MS: "600000", SWEEP_GRACE_MS: "600000" });
});
test.after.always(async () => {
  await stack?.stop();
});

/** One daemon with `runtimes` runtimes, an agent on each, in a fresh workspace. */
async function daemonWithAgents(runtimes = 1, agent: Record<string, unknown> = {}) {
  const ws = await seedWorkspace(stack);
  const daemon = await registerDaemon(stack, ws, { count: runtimes });
  const agents = await Promise.all(daemon.runtimeIds.map((runtimeId) => seedAgent(stack, ws, runtimeId, agent)));
  return { ws, token: ws.member.pat, ...daemon, agents };
}

const claim = (token: string, daemonId: string, runtimeIds: string[], maxTasks: unknown) =>
  batchClaim(stack, token, { daemon_id: daemonId, runtime_ids: runtimeIds, max_tasks: maxTasks });

test("H-1: two runtimes of one daemon, one task each: both claimed in one call, one per runtime, each with a mat_ token", async (t) => {
  const d = await daemonWithAgents(2);
  const a = (await enqueue(stack, d.agents[0]!)).task;
  const b = (await enqueue(stack, d.agents[1]!)).task;
  const answer = await claim(d.token, d.daemonId, d.runtimeIds, 5);
  t.is(answer.status, 200);
  const tasks = tasksOf(answer);
  t.is(tasks.length, 2);
  t.deepEqual(tasks.map((x) => x.id).sort(), [a.id, b.id].sort());
  t.deepEqual(tasks.map((x) => x.runtime_id).sort(), [...d.runtimeIds].sort());
  for (const task of tasks) {
    t.regex(task.auth_token, /^mat_[0-9a-f]{40}$/);
    t.is(task.status, "dispatched");
    t.is(task.agent?.id, task.agent_id, "every task carries its agent");
    t.deepEqual(task.delivered_comment_ids, [], "the receipt is always there");
  }
});

test("H-2: an agent at 1 of 2 slots with queued work on two issues: max_tasks 1 hands out the oldest", async (t) => {
  // (active_sibling_runs is product data the product would supply; this plane does not serve it.)
  const d = await daemonWithAgents(1, { maxConcurrentTasks: 2 });
  const running = (await enqueue(stack, d.agents[0]!)).task;
  t.is(tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 1))[0]!.id, running.id);
  await stack.tasks.startTask({ taskId: running.id });
  const older = (await enqueue(stack, d.agents[0]!)).task;
  await enqueue(stack, d.agents[0]!);
  const tasks = tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 1));
  t.deepEqual(
    tasks.map((x) => x.id),
    [older.id],
  );
});

test("H-3: a daemon token reaches only its workspace: another workspace's runtime is skipped, its task stays queued", async (t) => {
  const a = await seedWorkspace(stack);
  const b = await daemonWithAgents();
  const queued = (await enqueue(stack, b.agents[0]!)).task;
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: a.workspaceId, daemonId: b.daemonId, ttlSeconds: 600 });
  const answer = await claim(token, b.daemonId, b.runtimeIds, 5);
  t.is(answer.status, 200);
  t.is(answer.text, '{"tasks":[]}\n');
  t.is((await taskState(stack, queued.id)).status, "queued");
});

test("a runtime with no daemon id (a cloud or fixture row) stays claimable", async (t) => {
  const d = await daemonWithAgents();
  await query(stack.db.url, "UPDATE registry.agent_runtime SET daemon_id = NULL WHERE id = $1", [d.runtimeIds[0]]);
  const queued = (await enqueue(stack, d.agents[0]!)).task;
  t.deepEqual(
    tasksOf(await claim(d.token, "any-daemon", d.runtimeIds, 5)).map((x) => x.id),
    [queued.id],
  );
});

test("H-4: nobody to act for (no runtime owner, no agent owner): no task answered, and the task is cancelled", async (t) => {
  const ws = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "ownerless", ttlSeconds: 600 });
  const d = await registerDaemon(stack, ws, { daemonId: "ownerless", token });
  const agentId = await seedAgent(stack, ws, d.runtimeIds[0]!, { ownerId: ws.owner.userId });
  const queued = (await enqueue(stack, agentId)).task;
  // The agent loses its owner after the enqueue (which would have refused it).
  await stack.registry.upsertAgent({
    agentId,
    workspaceId: ws.workspaceId,
    runtimeId: d.runtimeIds[0]!,
    name: "coder",
    instructions: "",
    customEnv: {},
    customArgs: [],
    runtimeConfigJson: "",
    skills: [],
    maxConcurrentTasks: 0,
    visibility: "",
  });
  await waitFor("the task queue to see the agent without owner", async () => {
    const { agent } = await stack.registry.getAgent({ agentId });
    return !agent!.ownerId;
  });
  const answer = await claim(token, "ownerless", d.runtimeIds, 5);
  t.is(answer.status, 200);
  t.is(answer.text, '{"tasks":[]}\n');
  t.is((await taskState(stack, queued.id)).status, "cancelled");
});

test("H-6: max_tasks 0, or absent, claims nothing (200, tasks []); the task stays queued", async (t) => {
  const d = await daemonWithAgents();
  const queued = (await enqueue(stack, d.agents[0]!)).task;
  for (const body of [
    { daemon_id: d.daemonId, runtime_ids: d.runtimeIds, max_tasks: 0 },
    { daemon_id: d.daemonId, runtime_ids: d.runtimeIds },
    { daemon_id: d.daemonId, runtime_ids: d.runtimeIds, max_tasks: null },
  ]) {
    const answer = await batchClaim(stack, d.token, body);
    t.is(answer.status, 200);
    t.is(answer.text, '{"tasks":[]}\n');
  }
  t.is((await taskState(stack, queued.id)).status, "queued");
});

test("H-7, H-12, HC-3: the checks run in the contract's order with its exact answers", async (t) => {
  const d = await daemonWithAgents();
  const post = (body: unknown, token = d.token) => batchClaim(stack, token, body);
  const raw = (text: string) =>
    http(stack.gatewayUrl, "POST", "/api/daemon/tasks/claim", { token: d.token, rawBody: text, headers: { "content-type": "application/json" } });
  const expect = async (answer: Promise<{ status: number; text: string }>, status: number, text: string, why: string) => {
    const got = await answer;
    t.is(got.status, status, why);
    t.is(got.text, text, why);
  };
  const invalid = '{"error":"invalid request body"}\n';
  await expect(raw(""), 400, invalid, "empty body");
  await expect(raw("[1]"), 400, invalid, "not an object");
  await expect(post({ daemon_id: 7 }), 400, invalid, "a non-string daemon_id");
  await expect(post({ daemon_id: "x", max_tasks: 1.5 }), 400, invalid, "a non-integer max_tasks");
  await expect(post({ daemon_id: "x", max_tasks: "1" }), 400, invalid, "a string max_tasks");
  await expect(post({ daemon_id: "x", runtime_ids: [1], max_tasks: 1 }), 400, invalid, "a non-string id");
  await expect(post({ max_tasks: -1 }), 400, '{"error":"daemon_id is required"}\n', "H-12: no daemon_id, before max_tasks");
  await expect(post({ daemon_id: "", max_tasks: 1 }), 400, '{"error":"daemon_id is required"}\n', "an empty daemon_id");
  await expect(post({ daemon_id: d.daemonId, max_tasks: -1 }), 400, '{"error":"max_tasks must not be negative"}\n', "H-7");

  const { token: daemonToken } = await stack.identity.issueDaemonToken({ workspaceId: d.ws.workspaceId, daemonId: d.daemonId, ttlSeconds: 600 });
  await expect(
    post({ daemon_id: "someone-else", max_tasks: -1 }, daemonToken),
    403,
    '{"error":"daemon_id does not match token"}\n',
    "HC-3: 403 before max_tasks",
  );
  await expect(
    post({ daemon_id: ` ${d.daemonId}`, max_tasks: 1 }, daemonToken),
    403,
    '{"error":"daemon_id does not match token"}\n',
    "compared raw, not trimmed",
  );
  await expect(post({ daemon_id: d.daemonId, runtime_ids: [], max_tasks: 1 }, daemonToken), 200, '{"tasks":[]}\n', "the matching daemon token");
  await expect(
    post({ daemon_id: "any", runtime_ids: d.runtimeIds, max_tasks: 1 }),
    200,
    '{"tasks":[]}\n',
    "a PAT has no daemon id: no 403 (the runtime's daemon differs)",
  );
  t.is((await post({ daemon_id: d.daemonId, runtime_ids: d.runtimeIds, max_tasks: 1 })).status, 200);
});

test("HC-3: max_tasks 100 hands out at most 32", async (t) => {
  const ws = await seedWorkspace(stack);
  const d = await registerDaemon(stack, ws);
  // One fresh claim per agent per call: 40 agents with a task each.
  const agents = await Promise.all(Array.from({ length: 40 }, () => seedAgent(stack, ws, d.runtimeIds[0]!)));
  for (const agentId of agents) await enqueue(stack, agentId);
  const tasks = tasksOf(await claim(ws.member.pat, d.daemonId, d.runtimeIds, 100));
  t.is(tasks.length, 32);
  t.is(new Set(tasks.map((x) => x.id)).size, 32);
  const [dispatched] = await query<{ count: number }>(
    stack.db.url,
    "SELECT count(*)::int AS count FROM taskqueue.task WHERE runtime_id = $1 AND status = 'dispatched'",
    [d.runtimeIds[0]],
  );
  t.is(dispatched!.count, 32, "nothing dispatched beyond the answer");
});

test("H-8: ids that are not UUIDs, unknown runtimes and duplicates are skipped; the valid runtime's task is claimed", async (t) => {
  const d = await daemonWithAgents();
  const queued = (await enqueue(stack, d.agents[0]!)).task;
  const ids = ["not-a-uuid", null, randomUUID(), d.runtimeIds[0]!.toUpperCase(), d.runtimeIds[0]!];
  const answer = await claim(d.token, d.daemonId, ids as string[], 5);
  t.is(answer.status, 200);
  t.deepEqual(
    tasksOf(answer).map((x) => x.id),
    [queued.id],
  );
});

test("never 404: only unknown or unreachable runtimes answer 200 with no tasks", async (t) => {
  const d = await daemonWithAgents();
  const other = await daemonWithAgents();
  await enqueue(stack, other.agents[0]!);
  for (const ids of [[randomUUID()], ["nope"], other.runtimeIds, []]) {
    const answer = await claim(d.token, d.daemonId, ids, 5);
    t.is(answer.status, 200, JSON.stringify(ids));
    t.is(answer.text, '{"tasks":[]}\n');
  }
});

test("the alias POST /api/daemon/claim is the same route", async (t) => {
  const d = await daemonWithAgents();
  const queued = (await enqueue(stack, d.agents[0]!)).task;
  const answer = await batchClaim(stack, d.token, { daemon_id: d.daemonId, runtime_ids: d.runtimeIds, max_tasks: 1 }, "/api/daemon/claim");
  t.deepEqual(
    tasksOf(answer).map((x) => x.id),
    [queued.id],
  );
});

test("H-9: a comment-backed task's answer and row carry its trigger comment as the delivery receipt", async (t) => {
  const d = await daemonWithAgents();
  const comment = randomUUID();
  const queued = (await enqueue(stack, d.agents[0]!, { triggerCommentId: comment })).task;
  const [task] = tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 1));
  t.is(task!.id, queued.id);
  t.deepEqual(task!.delivered_comment_ids, [comment]);
  t.deepEqual((await taskState(stack, queued.id)).delivered_comment_ids, [comment]);
});

test("H-10: a comment-backed task dispatched 120 s ago and never started is re-delivered, receipt and all", async (t) => {
  const d = await daemonWithAgents();
  const comment = randomUUID();
  const queued = (await enqueue(stack, d.agents[0]!, { triggerCommentId: comment })).task;
  const first = tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 1))[0]!;
  await dispatchedAgo(stack, queued.id, 120, null);
  const again = tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 1));
  t.deepEqual(
    again.map((x) => x.id),
    [queued.id],
  );
  t.not(again[0]!.auth_token, first.auth_token, "a new token");
  t.deepEqual(again[0]!.delivered_comment_ids, [comment]);
  const state = await taskState(stack, queued.id);
  t.deepEqual(state.delivered_comment_ids, [comment]);
  t.true(state.dispatched_seconds_ago! < 15);
  t.true(state.lease_in_future!, "a fresh prepare lease");
});

test("re-deliveries come first and count toward max_tasks", async (t) => {
  const ws = await seedWorkspace(stack);
  const d = await registerDaemon(stack, ws);
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => seedAgent(stack, ws, d.runtimeIds[0]!)));
  const lost = (await enqueue(stack, a!)).task;
  tasksOf(await claim(ws.member.pat, d.daemonId, d.runtimeIds, 1));
  await dispatchedAgo(stack, lost.id, 120, null);
  const fresh1 = (await enqueue(stack, b!, { priority: 9 })).task;
  await enqueue(stack, c!);
  const tasks = tasksOf(await claim(ws.member.pat, d.daemonId, d.runtimeIds, 2));
  t.deepEqual(
    tasks.map((x) => x.id),
    [lost.id, fresh1.id],
  );
});

test("H-11: a runtime bound to another daemon is skipped; its task stays queued", async (t) => {
  const ws = await seedWorkspace(stack);
  const d = await registerDaemon(stack, ws, { daemonId: "other-daemon-machine" });
  const agentId = await seedAgent(stack, ws, d.runtimeIds[0]!);
  const queued = (await enqueue(stack, agentId)).task;
  const answer = await claim(ws.member.pat, "this-daemon-machine", d.runtimeIds, 5);
  t.is(answer.text, '{"tasks":[]}\n');
  t.is((await taskState(stack, queued.id)).status, "queued");
});

/** Agent 1 on runtime 1 with 2 tasks on 2 issues, agent 2 on runtime 2 with 1 (H-14, H-15). */
async function twoAgentsFixture() {
  const d = await daemonWithAgents(2, { maxConcurrentTasks: 5 });
  await enqueue(stack, d.agents[0]!);
  await enqueue(stack, d.agents[0]!);
  await enqueue(stack, d.agents[1]!);
  return d;
}

test("H-14: one fresh claim per agent per call: max 5 three times hands out 2 (one per runtime), then 1, then 0", async (t) => {
  const d = await twoAgentsFixture();
  const first = tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 5));
  t.is(first.length, 2);
  t.deepEqual(first.map((x) => x.runtime_id).sort(), [...d.runtimeIds].sort());
  const second = tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 5));
  t.deepEqual(
    second.map((x) => x.runtime_id),
    [d.runtimeIds[0]],
  );
  t.deepEqual(tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 5)), []);
});

test("H-15: the same fixture with max 1 hands out exactly 1", async (t) => {
  const d = await twoAgentsFixture();
  t.is(tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 1)).length, 1);
});

test("work the one-per-agent rule left behind wakes the daemon's socket, so it asks again at once", async (t) => {
  const d = await daemonWithAgents(1, { maxConcurrentTasks: 10 });
  const socket = await openSocket(stack.gatewayUrl, d.token, d.runtimeIds);
  // Wake-ups published before the gateway's subscriptions reach NATS would be missed: wait for them.
  await untilWatched(stack.gatewaySockets, d.runtimeIds);
  try {
    const queued = [];
    for (let i = 0; i < 3; i++) queued.push((await enqueue(stack, d.agents[0]!)).task.id);
    // The enqueues' own wake-ups first: only what comes after the claim counts.
    for (const id of queued) await socket.next((f) => f.type === "daemon:task_available" && f.payload.task_id === id);
    const before = socket.frames.length;
    const tasks = tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 10));
    t.is(tasks.length, 1);
    const wake = await socket.next((f) => f.type === "daemon:task_available" && socket.frames.indexOf(f) >= before);
    t.is(wake.payload.runtime_id, d.runtimeIds[0]);
    // A claim that fills every free slot wakes nobody.
    const filled = socket.frames.length;
    t.is(tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 1)).length, 1);
    await claim(d.token, d.daemonId, [randomUUID()], 1); // a round trip, so a wake-up would have arrived
    t.is(socket.frames.slice(filled).filter((f) => f.type === "daemon:task_available").length, 0);
  } finally {
    socket.close();
  }
});

test("H-16: a runtime last seen 10 minutes ago gets no re-delivery: its expired-lease task stays dispatched", async (t) => {
  const d = await daemonWithAgents();
  const task = (await enqueue(stack, d.agents[0]!)).task;
  tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 1));
  await dispatchedAgo(stack, task.id, 600, -300);
  await lastSeenAgo(stack, d.runtimeIds[0]!, 600);
  t.deepEqual(tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 5)), []);
  const state = await taskState(stack, task.id);
  t.is(state.status, "dispatched");
  t.true(state.dispatched_seconds_ago! > 590, "not re-dispatched");
});

test("H-20: an agent with room for one, two batch claims racing: exactly one task is handed out and in flight", async (t) => {
  const d = await daemonWithAgents(2, { maxConcurrentTasks: 1 });
  // One agent on both runtimes: it moves to runtime 2 with work left on runtime 1.
  const agentId = d.agents[0]!;
  for (let i = 0; i < 3; i++) await enqueue(stack, agentId);
  await stack.registry.upsertAgent({
    agentId,
    workspaceId: d.ws.workspaceId,
    runtimeId: d.runtimeIds[1]!,
    name: "coder",
    instructions: "",
    customEnv: {},
    customArgs: [],
    runtimeConfigJson: "",
    skills: [],
    maxConcurrentTasks: 1,
    visibility: "",
  });
  for (let i = 0; i < 3; i++) await enqueue(stack, agentId);
  const answers = await Promise.all([claim(d.token, d.daemonId, [d.runtimeIds[0]!], 5), claim(d.token, d.daemonId, [d.runtimeIds[1]!], 5)]);
  t.is(answers.flatMap(tasksOf).length, 1);
  const [active] = await query<{ count: number }>(
    stack.db.url,
    "SELECT count(*)::int AS count FROM taskqueue.task WHERE agent_id = $1 AND status <> 'queued'",
    [agentId],
  );
  t.is(active!.count, 1);
});

test("H-21: offline and silent runtimes are handed nothing, fresh or re-delivered; a fresh runtime claims", async (t) => {
  const offline = await daemonWithAgents();
  const silent = await daemonWithAgents();
  const fresh = await daemonWithAgents();
  const queued = await Promise.all([offline, silent, fresh].map(async (d) => (await enqueue(stack, d.agents[0]!)).task));
  // Each also has a lost answer due for re-delivery.
  const lost = await Promise.all(
    [offline, silent, fresh].map(async (d) => {
      const agentId = await seedAgent(stack, d.ws, d.runtimeIds[0]!);
      const task = (await enqueue(stack, agentId)).task;
      await query(stack.db.url, "UPDATE taskqueue.task SET status = 'dispatched', dispatched_at = now() - interval '120 s' WHERE id = $1", [task.id]);
      return task;
    }),
  );
  await http(stack.gatewayUrl, "POST", "/api/daemon/deregister", { token: offline.token, body: { runtime_ids: offline.runtimeIds } });
  await waitFor(
    "liveness to see the runtime offline",
    async () =>
      (await query<{ status: string }>(stack.db.url, "SELECT status FROM liveness.runtime_liveness WHERE runtime_id = $1", [offline.runtimeIds[0]]))[0]
        ?.status === "offline",
  );
  await lastSeenAgo(stack, silent.runtimeIds[0]!, 600);

  // A wrong runtime id: nothing.
  t.deepEqual(tasksOf(await claim(fresh.token, fresh.daemonId, [randomUUID()], 5)), []);
  for (const d of [offline, silent]) {
    t.deepEqual(tasksOf(await claim(d.token, d.daemonId, d.runtimeIds, 5)), [], "batch");
    const single = await http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${d.runtimeIds[0]}/tasks/claim`, { token: d.token, body: {} });
    t.is(single.text, '{"task":null}\n', "per-runtime");
  }
  for (const [i, status] of [
    [0, "queued"],
    [1, "queued"],
  ] as const)
    t.is((await taskState(stack, queued[i]!.id)).status, status);
  for (const i of [0, 1]) t.true((await taskState(stack, lost[i]!.id)).dispatched_seconds_ago! > 100, "no re-delivery");
  // The fresh runtime gets its re-delivery first, then its queued task.
  const tasks = tasksOf(await claim(fresh.token, fresh.daemonId, fresh.runtimeIds, 5));
  t.deepEqual(
    tasks.map((x) => x.id),
    [lost[2]!.id, queued[2]!.id],
  );
});

test("H-22 (answer that cannot be built): a task whose agent is gone is failed invalid_task_identity and left out; the rest is answered", async (t) => {
  const ws = await seedWorkspace(stack);
  const d = await registerDaemon(stack, ws);
  const gone = await seedAgent(stack, ws, d.runtimeIds[0]!);
  const kept = await seedAgent(stack, ws, d.runtimeIds[0]!);
  const orphan = (await enqueue(stack, gone, { priority: 9 })).task;
  const fine = (await enqueue(stack, kept)).task;
  await query(stack.db.url, "DELETE FROM registry.agent WHERE id = $1", [gone]);
  const tasks = tasksOf(await claim(ws.member.pat, d.daemonId, d.runtimeIds, 5));
  t.deepEqual(
    tasks.map((x) => x.id),
    [fine.id],
  );
  const state = await taskState(stack, orphan.id);
  t.like(state, { status: "failed", failure_reason: "invalid_task_identity", error: "Task identity is invalid: the assigned agent no longer exists." });
  t.is(await tokenCount(stack, orphan.id), 0, "its token revoked with the failure");
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

test.serial("64 concurrent batch claims over 4 runtimes and 800 tasks never hand one task twice", async (t) => {
  const ws = await seedWorkspace(stack);
  const d = await registerDaemon(stack, ws, { count: 4 });
  const agents = await Promise.all(Array.from({ length: 40 }, (_, i) => seedAgent(stack, ws, d.runtimeIds[i % 4]!, { maxConcurrentTasks: 1_000 })));
  const enqueued: string[] = [];
  await pool(
    Array.from({ length: 800 }, (_, i) => agents[i % agents.length]!),
    32,
    async (agentId) => {
      enqueued.push((await enqueue(stack, agentId)).task.id);
    },
  );
  const claimed: string[] = [];
  const deadline = Date.now() + 120_000;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (claimed.length < enqueued.length && Date.now() < deadline) {
        for (const task of tasksOf(await claim(ws.member.pat, d.daemonId, d.runtimeIds, 8))) claimed.push(task.id);
      }
    }),
  );
  t.is(claimed.length, 800, "every task handed out once, none twice");
  t.deepEqual([...claimed].sort(), [...enqueued].sort());
  const rows = await query<{ status: string; count: number }>(
    stack.db.url,
    "SELECT status, count(*)::int AS count FROM taskqueue.task WHERE workspace_id = $1 GROUP BY status",
    [ws.workspaceId],
  );
  t.deepEqual(rows, [{ status: "dispatched", count: 800 }]);
  const [tokens] = await query<{ count: number }>(
    stack.db.url,
    "SELECT count(*)::int AS count FROM taskqueue.task_token t JOIN taskqueue.task k ON k.id = t.task_id WHERE k.workspace_id = $1",
    [ws.workspaceId],
  );
  t.is(tokens!.count, 800, "one token per task");
});

test.serial("per-agent limits hold across racing batch claims on several runtimes; a finished task frees exactly one slot", async (t) => {
  const d = await daemonWithAgents(2, { maxConcurrentTasks: 3 });
  const agentId = d.agents[0]!;
  for (let i = 0; i < 10; i++) await enqueue(stack, agentId);
  await stack.registry.upsertAgent({
    agentId,
    workspaceId: d.ws.workspaceId,
    runtimeId: d.runtimeIds[1]!,
    name: "coder",
    instructions: "",
    customEnv: {},
    customArgs: [],
    runtimeConfigJson: "",
    skills: [],
    maxConcurrentTasks: 3,
    visibility: "",
  });
  for (let i = 0; i < 10; i++) await enqueue(stack, agentId);
  const answers = await Promise.all(Array.from({ length: 32 }, (_, i) => claim(d.token, d.daemonId, i % 3 === 0 ? d.runtimeIds : [d.runtimeIds[i % 2]!], 8)));
  const won = answers.flatMap(tasksOf);
  t.is(won.length, 3);
  t.is(new Set(won.map((x) => x.id)).size, 3);
  const inFlight = async () =>
    (
      await query<{ count: number }>(
        stack.db.url,
        "SELECT count(*)::int AS count FROM taskqueue.task WHERE agent_id = $1 AND status IN ('dispatched', 'running')",
        [agentId],
      )
    )[0]!.count;
  t.is(await inFlight(), 3);
  await stack.tasks.startTask({ taskId: won[0]!.id });
  await stack.tasks.completeTask({ taskId: won[0]!.id, prUrl: "", output: "", sessionId: "", workDir: "", sessionRolloutMissing: false });
  const next = await Promise.all(Array.from({ length: 8 }, () => claim(d.token, d.daemonId, d.runtimeIds, 8)));
  t.is(next.flatMap(tasksOf).length, 1);
  t.is(await inFlight(), 3);
});
