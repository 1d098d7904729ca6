import { randomUUID } from "node:crypto";
import test from "ava";
import { openServiceHost, type ServiceHost } from "@controlplane/lifecycle";
import type { EventPayload } from "@controlplane/events";
import { createLogger } from "@controlplane/log";
import { registry as metrics } from "@controlplane/metrics";
import { createTestDatabase, createTestEvents, query, testEnv, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";
import { ActivityEvents } from "../src/activity.js";
import { BuiltinSkillsCache } from "../src/builtin-skills.js";
import { loadTaskQueueConfig } from "../src/config.js";
import type { TaskQueueDeps } from "../src/deps.js";
import { claimsInGroups, completionsInGroups, startsInGroups } from "../src/groups.js";
import { claimSettings } from "../src/claim.js";
import { completeTask, startTask } from "../src/lifecycle.js";
import * as tasks from "../src/repository/tasks.js";
import { MIGRATIONS_DIR, SCHEMA } from "../src/service.js";
import { KnownTasks } from "../src/task-refs.js";
import { WakeHub } from "../src/wake.js";

// Completion of a task this replica started: the transition and its events
// in one statement, with the same outcome as the transactional path.
let db: TestDatabase;
let events: TestEvents;
let host: ServiceHost;
let deps: TaskQueueDeps;
const log = createLogger("test", process.env.TEST_LOG_LEVEL ?? "silent");

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  const config = loadTaskQueueConfig(testEnv(db, events, { REGISTRY_GRPC_ADDR: "127.0.0.1:1", LIVENESS_GRPC_ADDR: "127.0.0.1:1" }));
  host = await openServiceHost({ name: "task-queue-test", schema: SCHEMA, migrationsDir: MIGRATIONS_DIR, config, log });
  const wake = new WakeHub(host.bus.nc, WakeHub.subjectPrefix(events.subjectRoot), log);
  host.onStop(async () => wake.close());
  deps = {
    pool: host.pool,
    outbox: host.outbox,
    bus: host.bus,
    activity: new ActivityEvents(host.bus, log),
    registry: undefined as never,
    identity: undefined as never,
    wake,
    reads: undefined as never,
    freshness: undefined as never,
    builtinSkills: new BuiltinSkillsCache(host.pool),
    claims: claimsInGroups(host.pool, claimSettings(config)),
    starts: startsInGroups(host.pool),
    completions: completionsInGroups(host.pool, host.outbox),
    knownTasks: new KnownTasks(60_000),
    config,
    log,
  };
});
test.after.always(async () => {
  await host?.stop();
  await events?.close();
  await db?.drop();
});

/** A dispatched task (as a claim leaves it), straight in the table. */
async function dispatched(issueId: string | null) {
  const row = await tasks.insertTask(host.pool, {
    workspaceId: randomUUID(),
    agentId: randomUUID(),
    runtimeId: randomUUID(),
    issueId,
    chatSessionId: null,
    autopilotRunId: null,
    triggerCommentId: null,
    triggerSummary: null,
    priority: 0,
    context: null,
    claimContext: {},
    forceFreshSession: false,
    initiatorUserId: null,
    maxAttempts: 2,
  });
  await query(db.url, "UPDATE taskqueue.task SET status = 'dispatched', dispatched_at = now() WHERE id = $1", [row!.id]);
  return row!;
}

const completion = { prUrl: "", output: "done", sessionId: "s-1", workDir: "/w" };

type Announcing = "task.completed" | "issue.first_executed";
const taskIdOf = (event: EventPayload<Announcing>) => {
  const named = event as EventPayload<"task.completed"> | EventPayload<"issue.first_executed">;
  return "taskId" in named ? named.taskId : named.task?.taskId;
};

/** The task's events of `type` once the relay has published them. */
async function published<T extends Announcing>(type: T, taskId: string, count: number) {
  return waitFor(`${count} ${type} of ${taskId}`, async () => {
    const found = (await events.read(type)).filter(({ event }) => taskIdOf(event) === taskId);
    return found.length >= count ? found : undefined;
  });
}

test("a started task completes in one statement with task.completed and issue.first_executed", async (t) => {
  const issueId = randomUUID();
  const task = await dispatched(issueId);
  await startTask(deps, task.id);
  t.truthy(deps.knownTasks.get(task.id), "start remembers the task");

  const { task: done, transitioned } = await completeTask(deps, task.id, completion);
  t.true(transitioned);
  t.is(done.status, "completed");
  t.is(done.session_id, "s-1");
  t.is(done.work_dir, "/w");
  t.deepEqual(JSON.parse(done.result_json!), { output: "done", pr_url: "", work_dir: "/w", session_id: "s-1" });
  t.is(deps.knownTasks.get(task.id), undefined, "forgotten once finished");

  const [completed] = await published("task.completed", task.id, 1);
  t.deepEqual(completed!.event.task, {
    taskId: task.id,
    agentId: task.agent_id,
    runtimeId: task.runtime_id,
    issueId,
    chatSessionId: "",
    autopilotRunId: "",
  });
  t.is(completed!.event.meta?.workspaceId, task.workspace_id);
  const [first] = await published("issue.first_executed", task.id, 1);
  t.is(first!.event.issueId, issueId);
  const recorded = await query<{ task_id: string }>(db.url, "SELECT task_id FROM taskqueue.issue_first_execution WHERE issue_id = $1", [issueId]);
  t.deepEqual(
    recorded.map((r) => r.task_id),
    [task.id],
  );
});

test("a second run of the same issue publishes no issue.first_executed", async (t) => {
  const issueId = randomUUID();
  const earlier = await dispatched(issueId);
  await startTask(deps, earlier.id);
  await completeTask(deps, earlier.id, completion);
  const later = await dispatched(issueId);
  await startTask(deps, later.id);
  t.true((await completeTask(deps, later.id, completion)).transitioned);
  await published("task.completed", later.id, 1);
  t.is((await events.read("issue.first_executed")).filter(({ event }) => event.taskId === later.id).length, 0);
});

test("a task moved to another runtime since it started completes with the runtime it has now", async (t) => {
  const task = await dispatched(null);
  await startTask(deps, task.id);
  const moved = randomUUID();
  await query(db.url, "UPDATE taskqueue.task SET runtime_id = $2 WHERE id = $1", [task.id, moved]);

  const { task: done, transitioned } = await completeTask(deps, task.id, completion);
  t.true(transitioned);
  t.is(done.runtime_id, moved);
  const [completed] = await published("task.completed", task.id, 1);
  t.is(completed!.event.task?.runtimeId, moved);
});

test("completing again changes nothing and publishes nothing more", async (t) => {
  const task = await dispatched(null);
  await startTask(deps, task.id);
  await completeTask(deps, task.id, completion);
  await published("task.completed", task.id, 1);
  // Known again (e.g. a replayed start answered 400): the statement must not match a completed task.
  deps.knownTasks.remember(task);
  const again = await completeTask(deps, task.id, { ...completion, output: "other" });
  t.false(again.transitioned);
  t.is(JSON.parse(again.task.result_json!).output, "done");
  const outbox = await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM taskqueue.outbox");
  await deps.outbox.relayAll();
  t.is((await events.read("task.completed")).filter(({ event }) => event.task?.taskId === task.id).length, 1, `outbox had ${outbox[0]!.n}`);
});

test("starts made together all start, each with its own row; the same task started twice at once starts once", async (t) => {
  const many = await Promise.all(Array.from({ length: 12 }, () => dispatched(null)));
  const twice = await dispatched(null);
  const outcomes = await Promise.allSettled([...many, twice, twice].map((task) => startTask(deps, task.id)));
  const started = outcomes.slice(0, many.length).map((o) => (o.status === "fulfilled" ? o.value : o.reason));
  t.deepEqual(
    started.map((row) => [row.id, row.status]),
    many.map((task) => [task.id, "running"]),
  );
  const [first, second] = outcomes.slice(many.length);
  t.is(first?.status, "fulfilled");
  t.is(second?.status, "rejected");
  t.is((second as PromiseRejectedResult).reason.message, "start task: no rows in result set", "as if it ran after the first");
  t.is(await startTask(deps, randomUUID()).catch((error: Error) => error.message), "task not found");
});

/** Statements of `transition` so far that carried more than one task. */
async function groupedStatements(transition: "start" | "complete"): Promise<number> {
  const { values } = await metrics.getSingleMetric("taskqueue_transition_batch_size")!.get();
  // A histogram's values carry the name of their series (bucket, count), which the generic type leaves out.
  const of = (name: string, le?: number) =>
    values.find((v) => (v as { metricName?: string }).metricName === name && v.labels.transition === transition && (le === undefined || v.labels.le === le))
      ?.value ?? 0;
  return of("taskqueue_transition_batch_size_count") - of("taskqueue_transition_batch_size_bucket", 1);
}

test("completions made together: each with its own events, one first execution per issue, a task completed twice at once completes once", async (t) => {
  const issueId = randomUUID();
  const others = await Promise.all(Array.from({ length: 6 }, () => dispatched(null)));
  const [firstRun, secondRun, twice] = [await dispatched(issueId), await dispatched(issueId), await dispatched(null)];
  const all = [...others, firstRun, secondRun, twice];
  for (const task of all) await startTask(deps, task.id);
  const groupedBefore = await groupedStatements("complete");

  // Two go at once; the rest queue up behind them and share a statement.
  const outcomes = await Promise.all([...all, twice].map((task) => completeTask(deps, task.id, completion)));
  t.true((await groupedStatements("complete")) > groupedBefore, "some completions shared a statement");
  t.deepEqual(
    outcomes.slice(0, -2).map((o) => [o.task.id, o.task.status, o.transitioned]),
    all.slice(0, -1).map((task) => [task.id, "completed", true]),
  );
  t.deepEqual(
    outcomes
      .slice(-2)
      .map((o) => o.transitioned)
      .sort(),
    [false, true],
    "the task completed twice transitioned once",
  );
  for (const task of all) t.is((await published("task.completed", task.id, 1)).length, 1, task.id);

  const recorded = await query<{ task_id: string }>(db.url, "SELECT task_id FROM taskqueue.issue_first_execution WHERE issue_id = $1", [issueId]);
  t.is(recorded.length, 1, "one of the issue's two runs is its first execution");
  const firstExecuted = await published("issue.first_executed", recorded[0]!.task_id, 1);
  await deps.outbox.relayAll();
  const ofIssue = (await events.read("issue.first_executed")).filter(({ event }) => event.issueId === issueId);
  t.deepEqual(
    ofIssue.map(({ event }) => event.taskId),
    [firstExecuted[0]!.event.taskId],
    "and only it announces it",
  );
});
