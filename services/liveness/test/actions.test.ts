import { randomUUID } from "node:crypto";
import test from "ava";
import type { Outbox } from "@controlplane/db";
import { createLogger } from "@controlplane/log";
import { ActionKind, type EnqueueActionRequest } from "@controlplane/proto/liveness/v1/liveness";
import { createTestDatabase, createTestEvents, query, testEnv, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";
import { enqueueAction, FINISHED_RESULT_MAX_BYTES, getAction, reportResult } from "../src/actions.js";
import { loadLivenessConfig } from "../src/config.js";
import type { LivenessDeps } from "../src/deps.js";
import { housekeepOnce } from "../src/housekeeping.js";
import { startLiveness, type RunningLiveness } from "../src/service.js";

let db: TestDatabase;
let events: TestEvents;
let liveness: RunningLiveness;
let deps: LivenessDeps;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  // Liveness alone: runtimes are written straight into its table, so the registry is never asked.
  const env = testEnv(db, events, { REGISTRY_GRPC_ADDR: "127.0.0.1:1", SWEEP_INTERVAL_MS: "600000" });
  liveness = await startLiveness(loadLivenessConfig(env), createLogger("test", env.LOG_LEVEL));
  deps = liveness.deps;
});
test.after.always(async () => {
  await liveness?.stop();
  await events?.close();
  await db?.drop();
});

/** An online runtime liveness knows of. */
async function onlineRuntime(): Promise<string> {
  const runtimeId = randomUUID();
  await query(db.url, "INSERT INTO liveness.runtime_liveness (runtime_id, workspace_id, status, last_seen_at) VALUES ($1, $2, 'online', now())", [
    runtimeId,
    randomUUID(),
  ]);
  return runtimeId;
}

function enqueue(runtimeId: string, kind: ActionKind, extra: Partial<EnqueueActionRequest> = {}) {
  return enqueueAction(deps, { runtimeId, kind, targetVersion: "", skillKey: "", importAction: "", supportsConflict: false, ...extra });
}

/** Makes an action overdue: created (and started) an hour ago. */
async function overdue(actionId: string): Promise<void> {
  await query(db.url, "UPDATE liveness.pending_action SET created_at = now() - interval '1 hour', run_started_at = now() - interval '1 hour' WHERE id = $1", [
    actionId,
  ]);
}

const storedStatus = async (actionId: string) =>
  (await query<{ status: string }>(db.url, "SELECT status FROM liveness.pending_action WHERE id = $1", [actionId]))[0]!.status;

/** This service's outbox, except that recording an event fails (inside the caller's transaction). */
function failingOutbox(outbox: Outbox): Outbox {
  const failing = Object.create(outbox) as Outbox;
  failing.writeMany = () => Promise.reject(new Error("injected: outbox write failed"));
  return failing;
}

/** Every action.finished of the action, once at least `count` have arrived. */
const finishedEvents = (actionId: string, count = 1) =>
  waitFor(`${count} action.finished for ${actionId}`, async () => {
    const found = (await events.read("action.finished")).filter((e) => e.event.actionId === actionId).map((e) => e.event);
    return found.length >= count ? found : undefined;
  });

test.serial("a read that times an action out commits the timeout and its action.finished together, or neither", async (t) => {
  const runtimeId = await onlineRuntime();
  const action = await enqueue(runtimeId, ActionKind.ACTION_KIND_MODEL_LIST);
  await overdue(action.id);
  await t.throwsAsync(getAction({ ...deps, outbox: failingOutbox(deps.outbox) }, action.id), { message: /injected/ });
  t.is(await storedStatus(action.id), "pending", "the timeout rolled back with its event");
  t.like(await getAction(deps, action.id), { status: "timeout", error: "daemon did not respond within 30 seconds" });
  const finished = await finishedEvents(action.id);
  t.like(finished, [{ status: "timeout", error: "daemon did not respond within 30 seconds" }]);
  await getAction(deps, action.id);
  t.is((await finishedEvents(action.id)).length, 1, "a later read announces nothing again");
});

test.serial("housekeeping times overdue actions out with their events in the same transaction", async (t) => {
  const runtimeId = await onlineRuntime();
  const update = await enqueue(runtimeId, ActionKind.ACTION_KIND_UPDATE, { targetVersion: "9.9.9" });
  const skills = await enqueue(runtimeId, ActionKind.ACTION_KIND_LOCAL_SKILLS);
  await query(db.url, "UPDATE liveness.pending_action SET status = 'running' WHERE id = $1", [skills.id]);
  await Promise.all([overdue(update.id), overdue(skills.id)]);
  await t.throwsAsync(housekeepOnce({ ...deps, outbox: failingOutbox(deps.outbox) }), { message: /injected/ });
  t.deepEqual([await storedStatus(update.id), await storedStatus(skills.id)], ["pending", "running"], "nothing timed out without its event");
  await housekeepOnce(deps);
  t.like(await finishedEvents(update.id), [{ kind: "update", status: "timeout", error: "daemon did not respond within 120 seconds" }]);
  t.like(await finishedEvents(skills.id), [{ kind: "local_skills", status: "timeout", error: "daemon did not finish within 60 seconds" }]);
});

test.serial("a daemon's report finishes the action with its event, or not at all", async (t) => {
  const runtimeId = await onlineRuntime();
  const action = await enqueue(runtimeId, ActionKind.ACTION_KIND_UPDATE, { targetVersion: "1.0.0" });
  const report = { runtimeId, actionId: action.id, kind: ActionKind.ACTION_KIND_UPDATE, status: "failed", error: "disk full" };
  await t.throwsAsync(reportResult({ ...deps, outbox: failingOutbox(deps.outbox) }, report), { message: /injected/ });
  t.is(await storedStatus(action.id), "pending");
  t.like((await reportResult(deps, report)).action!, { status: "failed", error: "disk full" });
  t.like(await finishedEvents(action.id), [{ status: "failed", error: "disk full" }]);
});

test.serial("action.finished carries a result up to 64 KiB; a larger one goes out empty and GetAction has it in full", async (t) => {
  const runtimeId = await onlineRuntime();
  const modelsOf = (count: number) =>
    JSON.stringify({ models: Array.from({ length: count }, (_, i) => ({ id: `model-${i}`, label: `Model ${i}` })), supported: true });
  const small = modelsOf(3);
  const large = modelsOf(Math.ceil(FINISHED_RESULT_MAX_BYTES / 30));
  t.true(Buffer.byteLength(large) > FINISHED_RESULT_MAX_BYTES);
  const finishWith = async (resultJson: string) => {
    const action = await enqueue(runtimeId, ActionKind.ACTION_KIND_MODEL_LIST);
    await reportResult(deps, { runtimeId, actionId: action.id, kind: ActionKind.ACTION_KIND_MODEL_LIST, status: "completed", resultJson });
    return action.id;
  };
  const smallId = await finishWith(small);
  const largeId = await finishWith(large);
  const [smallEvent] = await finishedEvents(smallId);
  t.deepEqual(JSON.parse(smallEvent!.resultJson), JSON.parse(small));
  const [largeEvent] = await finishedEvents(largeId);
  t.is(largeEvent!.status, "completed");
  t.is(Buffer.byteLength(largeEvent!.resultJson), 0, "a result over the limit goes out empty");
  t.deepEqual(JSON.parse((await getAction(deps, largeId)).resultJson!), JSON.parse(large), "the full result is read with GetAction");
});
