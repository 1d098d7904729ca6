import { randomUUID } from "node:crypto";
import test from "ava";
import { LIMITS } from "@controlplane/config";
import { DomainError, GrpcServer, hasCode, status, type UnaryHandlers } from "@controlplane/grpc";
import { freePort } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { registry as metrics } from "@controlplane/metrics";
import { type CompleteTaskRequest, TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { closeGatewayClients, createGatewayClients } from "../../services/gateway/src/clients.js";
import { query } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { taskState } from "../support/claims.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

// The task queue's batch calls (ClaimTaskBatch, StartTaskBatch,
// CompleteTaskBatch) over real gRPC: each item answered as its single call
// would have been, one item's error failing only that item. And the
// gateway, which sends a busy moment's claims, starts and completions in
// them, answering every daemon its own.

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

/** A runtime with its agent and `count` queued tasks (distinct issues). */
async function queued(ws: SeededWorkspace, count: number) {
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId, { maxConcurrentTasks: 100 });
  const taskIds: string[] = [];
  for (let i = 0; i < count; i++) taskIds.push((await enqueue(stack, agentId)).task.id);
  return { runtimeId, taskIds };
}

/** Claims every queued task of the runtime over HTTP, one at a time. */
async function claimAll(ws: SeededWorkspace, runtimeId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const answer = await claimOverHttp(stack, ws.member.pat, runtimeId);
    if (!(answer.json as { task: unknown }).task) throw new Error(`claim ${i}: ${answer.text}`);
  }
}

const completion = (taskId: string, extra: Partial<CompleteTaskRequest> = {}): CompleteTaskRequest => ({
  taskId,
  prUrl: "",
  output: "done",
  sessionId: "",
  workDir: "",
  sessionRolloutMissing: false,
  ...extra,
});

test("ClaimTaskBatch answers each runtime in order: its task, nothing, or the single claim's error", async (t) => {
  const ws = await seedWorkspace(stack);
  const a = await queued(ws, 1);
  const b = await queued(ws, 1);
  const idle = await queued(ws, 0);
  const { outcomes } = await stack.tasks.claimTaskBatch({ runtimeIds: [a.runtimeId, "not-a-uuid", b.runtimeId, idle.runtimeId] });
  t.is(outcomes.length, 4);
  const [first, malformed, second, nothing] = outcomes.map(({ outcome }) => outcome);
  t.is(first?.$case === "answer" && first.value.claimed?.task?.id, a.taskIds[0]);
  t.is(second?.$case === "answer" && second.value.claimed?.task?.id, b.taskIds[0]);
  t.is(nothing?.$case, "answer");
  t.is(nothing?.$case === "answer" ? nothing.value.claimed : "no answer", undefined, "an idle runtime is handed nothing, as ClaimTask answers");
  t.is(malformed?.$case, "error");
  t.is(malformed?.$case === "error" && malformed.value.code, status.INVALID_ARGUMENT);
  t.is((await taskState(stack, a.taskIds[0]!)).status, "dispatched");
  t.is((await taskState(stack, b.taskIds[0]!)).status, "dispatched");
});

test("StartTaskBatch starts each task on its own: a missing or unstartable one fails alone", async (t) => {
  const ws = await seedWorkspace(stack);
  const { runtimeId, taskIds } = await queued(ws, 2);
  await claimAll(ws, runtimeId, 2);
  const unknown = randomUUID();
  const { outcomes } = await stack.tasks.startTaskBatch({ starts: [taskIds[0]!, unknown, taskIds[1]!, taskIds[0]!].map((taskId) => ({ taskId })) });
  const [started, missing, alsoStarted, again] = outcomes.map(({ outcome }) => outcome);
  t.is(started?.$case === "answer" && started.value.task?.status, "running");
  t.is(alsoStarted?.$case === "answer" && alsoStarted.value.task?.id, taskIds[1]);
  t.deepEqual(missing, { $case: "error", value: { code: status.NOT_FOUND, message: "task not found" } });
  // Started by its first item, the task is no longer startable: StartTask's own 400 text.
  t.deepEqual(again, { $case: "error", value: { code: status.INVALID_ARGUMENT, message: "start task: no rows in result set" } });
  for (const id of taskIds) t.is((await taskState(stack, id)).status, "running");
});

test("CompleteTaskBatch completes each task on its own: a field over its bound fails only its item", async (t) => {
  const ws = await seedWorkspace(stack);
  const { runtimeId, taskIds } = await queued(ws, 2);
  await claimAll(ws, runtimeId, 2);
  await stack.tasks.startTaskBatch({ starts: taskIds.map((taskId) => ({ taskId })) });
  const { outcomes } = await stack.tasks.completeTaskBatch({
    completions: [completion(taskIds[0]!, { output: "x".repeat(LIMITS.TEXT_CHARS + 1) }), completion(taskIds[1]!, { prUrl: "https://example.com/pull/1" })],
  });
  const [tooLong, done] = outcomes.map(({ outcome }) => outcome);
  t.is(tooLong?.$case, "error");
  t.is(tooLong?.$case === "error" && tooLong.value.code, status.INVALID_ARGUMENT);
  t.like(done, { $case: "answer", value: { transitioned: true, task: { id: taskIds[1], status: "completed" } } });
  t.is((await taskState(stack, taskIds[0]!)).status, "running", "the refused completion wrote nothing");
  t.is((await taskState(stack, taskIds[1]!)).status, "completed");
});

test("a batch over 100 items is refused whole, before anything is done", async (t) => {
  const ws = await seedWorkspace(stack);
  const { runtimeId, taskIds } = await queued(ws, 1);
  await claimAll(ws, runtimeId, 1);
  const starts = Array.from({ length: 101 }, () => ({ taskId: taskIds[0]! }));
  const error = await t.throwsAsync(stack.tasks.startTaskBatch({ starts }));
  t.true(hasCode(error, status.INVALID_ARGUMENT), String(error));
  t.is((await taskState(stack, taskIds[0]!)).status, "dispatched");
  const claims = await t.throwsAsync(stack.tasks.claimTaskBatch({ runtimeIds: Array.from({ length: 101 }, () => runtimeId) }));
  t.true(hasCode(claims, status.INVALID_ARGUMENT), String(claims));
});

test("daemons claiming, starting and completing at once through the gateway each get their own answer", async (t) => {
  const ws = await seedWorkspace(stack);
  const count = 24;
  const { runtimeId, taskIds } = await queued(ws, count);
  const post = (path: string, body: unknown = {}) => http(stack.gatewayUrl, "POST", `/api/daemon${path}`, { token: ws.member.pat, body });

  const claims = await Promise.all(taskIds.map(() => post(`/runtimes/${runtimeId}/tasks/claim`)));
  const claimed = claims.map((answer) => (answer.json as { task: { id: string } | null }).task?.id);
  t.deepEqual(
    claims.map((answer) => answer.status),
    taskIds.map(() => 200),
  );
  t.deepEqual([...claimed].sort(), [...taskIds].sort(), "every task handed out once, none twice");

  const unknown = randomUUID();
  const starts = await Promise.all([...taskIds, unknown].map((id) => post(`/tasks/${id}/start`)));
  t.deepEqual(
    starts.map((answer) => [answer.status, (answer.json as { id?: string; status?: string }).status]),
    [...taskIds.map(() => [200, "running"]), [404, undefined]],
  );
  t.deepEqual(
    starts.slice(0, count).map((answer) => (answer.json as { id: string }).id),
    taskIds,
    "each start answered its own task",
  );

  const completions = await Promise.all(taskIds.map((id, i) => post(`/tasks/${id}/complete`, { output: `result ${i}` })));
  t.deepEqual(
    completions.map((answer) => [answer.status, (answer.json as { id: string; status: string }).id, (answer.json as { status: string }).status]),
    taskIds.map((id) => [200, id, "completed"]),
  );
  // Every start made through a gateway counted in the calls' sizes (this file's other tests start through one too).
  const sizes = await metrics.getSingleMetricAsString("gateway_task_call_items");
  const startedItems = Number(/gateway_task_call_items_sum\{kind="start"\} (\d+)/.exec(sizes)?.[1]);
  t.true(startedItems >= count, sizes);
  t.regex(await metrics.getSingleMetricAsString("gateway_task_calls_waiting"), /gateway_task_calls_waiting\{kind="complete"\} \d+/);
  for (const [i, id] of taskIds.entries()) {
    const [row] = await query<{ output: string }>(stack.db.url, "SELECT result->>'output' AS output FROM taskqueue.task WHERE id = $1", [id]);
    t.is(row?.output, `result ${i}`, "each completion stored its own report");
  }
});

/**
 * A task queue from before the batch calls, as a rolling upgrade meets it:
 * a gRPC server that answers the single calls (from the real task queue)
 * and UNIMPLEMENTED, as grpc-js does for a method it does not serve, to the
 * batch calls.
 */
async function olderTaskQueue() {
  const unimplemented = async (): Promise<never> => {
    throw new DomainError(status.UNIMPLEMENTED, "Method not found");
  };
  const handlers = Object.fromEntries(Object.keys(TaskQueueServiceService).map((name) => [name, unimplemented])) as unknown as UnaryHandlers<
    typeof TaskQueueServiceService
  >;
  const server = new GrpcServer(createLogger("older-task-queue", "silent")).add(TaskQueueServiceService, {
    ...handlers,
    claimTask: (req) => stack.tasks.claimTask(req),
    startTask: (req) => stack.tasks.startTask(req),
    completeTask: (req) => stack.tasks.completeTask(req),
  });
  const port = await server.listen(await freePort(), "127.0.0.1");
  return { address: `127.0.0.1:${port}`, stop: () => server.shutdown(1_000) };
}

test("against a task queue without the batch calls, the gateway's claims, starts and completions go one by one", async (t) => {
  const older = await olderTaskQueue();
  const clients = createGatewayClients({
    registry: stack.registryAddr,
    profileCatalog: stack.profilesAddr,
    taskQueue: older.address,
    liveness: stack.livenessAddr,
  });
  t.teardown(async () => {
    closeGatewayClients(clients);
    await older.stop();
  });
  const ws = await seedWorkspace(stack);
  const { runtimeId, taskIds } = await queued(ws, 3);
  // Submitted together: the first goes alone, the other two share a batch.
  const claimed = await Promise.all(taskIds.map(() => clients.claims.submit(runtimeId)));
  t.deepEqual(claimed.map(({ claimed: c }) => c?.task?.id).sort(), [...taskIds].sort());
  const started = await Promise.all(taskIds.map((taskId) => clients.starts.submit({ taskId })));
  t.deepEqual(
    started.map(({ task }) => task?.status),
    ["running", "running", "running"],
  );
  const refused = await t.throwsAsync(clients.starts.submit({ taskId: randomUUID() }));
  t.true(hasCode(refused, status.NOT_FOUND), "an item's own error comes back as the single call's");
  const done = await Promise.all(taskIds.map((taskId) => clients.completions.submit(completion(taskId))));
  t.deepEqual(
    done.map(({ task, transitioned }) => [task?.id, task?.status, transitioned]),
    taskIds.map((id) => [id, "completed", true]),
  );
});
