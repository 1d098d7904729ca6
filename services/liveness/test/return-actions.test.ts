import { randomBytes, randomUUID } from "node:crypto";
import test from "ava";
import { createClient, status, type PromiseClient } from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { ActionKind, LivenessServiceService, type EnqueueActionRequest } from "@controlplane/proto/liveness/v1/liveness";
import { createTestDatabase, createTestEvents, query, testEnv, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";
import { loadLivenessConfig } from "../src/config.js";
import { startLiveness, type RunningLiveness } from "../src/service.js";

type Client = PromiseClient<typeof LivenessServiceService>;

let db: TestDatabase;
let events: TestEvents;
const replicas: RunningLiveness[] = [];
/** Two replicas of liveness on one database and event stream. */
let a: Client;
let b: Client;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  // Liveness alone: runtimes are written straight into its table, so the registry is never asked.
  const env = testEnv(db, events, { REGISTRY_GRPC_ADDR: "127.0.0.1:1", SWEEP_INTERVAL_MS: "600000" });
  const log = createLogger("test", env.LOG_LEVEL);
  const replica = async (): Promise<Client> => {
    const running = await startLiveness(loadLivenessConfig(env), log);
    replicas.push(running);
    return createClient(LivenessServiceService, `127.0.0.1:${running.port}`);
  };
  a = await replica();
  b = await replica();
});
test.after.always(async () => {
  a?.close();
  b?.close();
  for (const replica of replicas) await replica.stop();
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

async function enqueue(client: Client, runtimeId: string, kind: ActionKind, extra: Partial<EnqueueActionRequest> = {}) {
  const { action } = await client.enqueueAction({ runtimeId, kind, targetVersion: "", skillKey: "", importAction: "", supportsConflict: false, ...extra });
  return action!;
}

const beat = (client: Client, runtimeId: string) => client.heartbeat({ runtimeId, supportsBatchImport: true });

const stored = async (actionId: string) =>
  (
    await query<{ status: string; run_started_at: Date | null }>(db.url, "SELECT status, run_started_at FROM liveness.pending_action WHERE id = $1", [actionId])
  )[0]!;

test("an action returned on one replica is delivered by the next beat on another", async (t) => {
  const runtimeId = await onlineRuntime();
  const models = await enqueue(a, runtimeId, ActionKind.ACTION_KIND_MODEL_LIST);
  // Replica b learns of the mail from a's broadcast, then pops it.
  const popped = await waitFor("b to pop the action", async () => (await beat(b, runtimeId)).pendingModelList);
  t.is(popped.id, models.id);
  // Both replicas now have an empty mailbox for it and stop probing.
  t.is((await beat(a, runtimeId)).pendingModelList, undefined);
  t.is((await beat(b, runtimeId)).pendingModelList, undefined);

  t.deepEqual(await a.returnActions({ runtimeId, actionIds: [models.id] }), { returnedCount: 1, returnedActionIds: [models.id] });
  t.deepEqual(await stored(models.id), { status: "pending", run_started_at: null });
  // Each beat pops, so the first beat that finds it is the only one that can.
  const again = await waitFor("b's next beats to deliver it again", async () => (await beat(b, runtimeId)).pendingModelList);
  t.is(again.id, models.id);
  t.is((await stored(models.id)).status, "running");
});

test("only that runtime's actions still running within their timeout go back", async (t) => {
  const runtimeId = await onlineRuntime();
  const otherRuntime = await onlineRuntime();
  const update = await enqueue(a, runtimeId, ActionKind.ACTION_KIND_UPDATE, { targetVersion: "2.0.0" });
  const models = await enqueue(a, runtimeId, ActionKind.ACTION_KIND_MODEL_LIST);
  const skills = await enqueue(a, runtimeId, ActionKind.ACTION_KIND_LOCAL_SKILLS);
  const foreign = await enqueue(a, otherRuntime, ActionKind.ACTION_KIND_MODEL_LIST);
  const popped = await beat(a, runtimeId);
  t.deepEqual([popped.pendingUpdate?.id, popped.pendingModelList?.id, popped.pendingLocalSkills?.id], [update.id, models.id, skills.id]);
  t.is((await beat(a, otherRuntime)).pendingModelList?.id, foreign.id);
  // The daemon answered the update; the skill list ran past its 60 s running timeout.
  await a.reportActionResult({ runtimeId, actionId: update.id, kind: ActionKind.ACTION_KIND_UPDATE, status: "completed", output: "ok" });
  await query(db.url, "UPDATE liveness.pending_action SET run_started_at = now() - interval '61 seconds' WHERE id = $1", [skills.id]);

  const unknown = randomBytes(16).toString("hex");
  const returned = await a.returnActions({
    runtimeId,
    actionIds: [update.id, skills.id, foreign.id, "not-an-id", unknown, models.id, models.id],
  });
  t.deepEqual(returned, { returnedCount: 1, returnedActionIds: [models.id] });
  t.is((await stored(update.id)).status, "completed");
  t.is((await stored(foreign.id)).status, "running", "another runtime's action is not this runtime's to return");
  t.like((await a.getAction({ actionId: skills.id })).action!, { status: "timeout", error: "daemon did not finish within 60 seconds" });
});

test("ReturnActions refuses a malformed runtime id and more than 100 ids; nothing to return answers zero", async (t) => {
  const bad = await t.throwsAsync(a.returnActions({ runtimeId: "x", actionIds: [] }));
  t.like(bad as object, { code: status.INVALID_ARGUMENT, details: "invalid runtime_id" });
  const ids = Array.from({ length: 101 }, () => randomBytes(16).toString("hex"));
  const many = await t.throwsAsync(a.returnActions({ runtimeId: randomUUID(), actionIds: ids }));
  t.like(many as object, { code: status.INVALID_ARGUMENT, details: "too many action_ids" });
  t.deepEqual(await a.returnActions({ runtimeId: randomUUID(), actionIds: ids.slice(0, 100) }), { returnedCount: 0, returnedActionIds: [] });
});
