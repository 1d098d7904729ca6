import { randomUUID } from "node:crypto";
import test from "ava";
import { status } from "@controlplane/grpc";
import { registry as metrics } from "@controlplane/metrics";
import { ActionKind } from "@controlplane/proto/liveness/v1/liveness";
import { query, waitFor } from "@controlplane/testkit";
import { golden, normalize } from "../support/golden.js";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";
import { seedRuntime } from "../support/tasks.js";

let stack: Stack;
test.before(async () => {
  // Flushes and sweeps run only when a test asks (long tick and interval).
  stack = await startStack({ FLUSH_INTERVAL_MS: "1000", FLUSH_TICK_MS: "100000", SWEEP_INTERVAL_MS: "600000" });
});
test.after.always(async () => {
  await stack?.stop();
});

const beat = (ws: SeededWorkspace, runtimeId: string, batch = true) =>
  http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token: ws.member.pat, body: { runtime_id: runtimeId, supports_batch_import: batch } });

const livenessRow = async (runtimeId: string) =>
  (
    await query<{ status: string; last_seen_at: Date | null; xmin: string }>(
      stack.db.url,
      "SELECT status, last_seen_at, xmin::text AS xmin FROM liveness.runtime_liveness WHERE runtime_id = $1",
      [runtimeId],
    )
  )[0]!;

async function enqueue(runtimeId: string, kind: ActionKind, extra: Record<string, unknown> = {}) {
  const { action } = await stack.liveness.enqueueAction({
    runtimeId,
    kind,
    targetVersion: "",
    skillKey: "",
    importAction: "",
    supportsConflict: false,
    ...extra,
  });
  return action!;
}

test("the heartbeat ack carries each kind of pending action (golden), each delivered once", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  t.is((await beat(ws, runtimeId)).text, '{"status":"ok"}\n', "online first, nothing pending");
  const update = await enqueue(runtimeId, ActionKind.ACTION_KIND_UPDATE, { targetVersion: "1.2.3" });
  const models = await enqueue(runtimeId, ActionKind.ACTION_KIND_MODEL_LIST);
  const skills = await enqueue(runtimeId, ActionKind.ACTION_KIND_LOCAL_SKILLS);
  const first = await enqueue(runtimeId, ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT, { skillKey: "lint" });
  const second = await enqueue(runtimeId, ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT, { skillKey: "format" });
  const answer = await beat(ws, runtimeId);
  t.is(answer.status, 200);
  const names = { update: update.id, models: models.id, skills: skills.id, first: first.id, second: second.id };
  const body = Object.entries(names).reduce((text, [name, id]) => text.replaceAll(id, `<${name}>`), normalize(answer.text));
  t.is(body, golden(new URL("golden/heartbeat.json", import.meta.url), body));
  t.is((await beat(ws, runtimeId)).text, '{"status":"ok"}\n', "nothing is delivered twice");
  const { action } = await stack.liveness.getAction({ actionId: update.id });
  t.is(action!.status, "running");
});

test("without batch support one import comes per beat, in the singular field", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  await beat(ws, runtimeId);
  const a = await enqueue(runtimeId, ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT, { skillKey: "a" });
  const b = await enqueue(runtimeId, ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT, { skillKey: "b" });
  t.deepEqual((await beat(ws, runtimeId, false)).json, { status: "ok", pending_local_skill_import: { id: a.id, skill_key: "a" } });
  t.deepEqual((await beat(ws, runtimeId, false)).json, { status: "ok", pending_local_skill_import: { id: b.id, skill_key: "b" } });
});

test("a pending action is delivered exactly once under concurrent heartbeats", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  await beat(ws, runtimeId);
  const model = await enqueue(runtimeId, ActionKind.ACTION_KIND_MODEL_LIST);
  const imports = await Promise.all(Array.from({ length: 25 }, (_, i) => enqueue(runtimeId, ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT, { skillKey: `s${i}` })));
  const answers = await Promise.all(Array.from({ length: 20 }, () => beat(ws, runtimeId)));
  const bodies = answers.map((a) => a.json as { pending_model_list?: { id: string }; pending_local_skill_imports?: Array<{ id: string }> });
  t.is(bodies.filter((b) => b.pending_model_list?.id === model.id).length, 1);
  const delivered = bodies.flatMap((b) => b.pending_local_skill_imports ?? []).map((i) => i.id);
  t.is(delivered.length, 25);
  t.deepEqual([...delivered].sort(), imports.map((i) => i.id).sort());
  t.true(
    bodies.every((b) => (b.pending_local_skill_imports?.length ?? 0) <= 10),
    "at most 10 per beat",
  );
});

// Serial: other tests' beats would join the flush it counts.
test.serial("beats write nothing to the database; one bulk UPDATE per tick flushes them all", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimes = await Promise.all(Array.from({ length: 30 }, () => seedRuntime(stack, ws)));
  for (const id of runtimes) await beat(ws, id); // first beats flip each runtime online (one write each)
  await flushNow();
  const before = await Promise.all(runtimes.map(livenessRow));
  const newest = Math.max(...before.map((r) => r.last_seen_at!.getTime()));
  // A tenth of the interval more, for the database's and this process's clocks rounding differently.
  const flushInterval = Number(stack.env.FLUSH_INTERVAL_MS);
  await waitFor("the flush interval to pass for every runtime", async () => Date.now() - newest > flushInterval * 1.1, {
    timeoutMs: flushInterval * 5,
  });
  for (let round = 0; round < 3; round++) for (const id of runtimes) t.is((await beat(ws, id)).status, 200);
  const afterBeats = await Promise.all(runtimes.map(livenessRow));
  t.deepEqual(
    afterBeats.map((r) => r.xmin),
    before.map((r) => r.xmin),
    "90 beats, not one row version written",
  );
  t.is(await flushNow(), 30);
  const flushed = await Promise.all(runtimes.map(livenessRow));
  t.is(new Set(flushed.map((r) => r.xmin)).size, 1, "every row written by the same single statement");
  t.true(flushed.every((r, i) => r.last_seen_at! > before[i]!.last_seen_at!));
});

test("HeartbeatBatch answers each beat on its own, in request order", async (t) => {
  const ws = await seedWorkspace(stack);
  const live = await seedRuntime(stack, ws);
  const { outcomes } = await stack.liveness.heartbeatBatch({
    beats: [
      { runtimeId: live, supportsBatchImport: true },
      { runtimeId: "x", supportsBatchImport: false },
      { runtimeId: randomUUID(), supportsBatchImport: false },
      { runtimeId: "", supportsBatchImport: false },
      { runtimeId: live.toUpperCase(), supportsBatchImport: false },
    ],
  });
  // Decoded messages carry every optional field (undefined): compare as JSON.
  t.deepEqual(JSON.parse(JSON.stringify(outcomes.map((o) => o.outcome))), [
    { $case: "ack", value: { pendingLocalSkillImports: [], workspaceId: ws.workspaceId } },
    { $case: "error", value: { code: status.INVALID_ARGUMENT, message: "invalid runtime_id" } },
    { $case: "error", value: { code: status.NOT_FOUND, message: "runtime not found" } },
    { $case: "error", value: { code: status.INVALID_ARGUMENT, message: "runtime_id is required" } },
    { $case: "ack", value: { pendingLocalSkillImports: [], workspaceId: ws.workspaceId } },
  ]);
});

/** A counter of the services in this process, summed over the label values `match` accepts. */
async function counterSum(name: string, match: (labels: Partial<Record<string, string | number>>) => boolean): Promise<number> {
  const values = (await metrics.getSingleMetric(name)!.get()).values;
  return values.filter((v) => match(v.labels)).reduce((sum, v) => sum + v.value, 0);
}

// Serial: the counters read below are the process's, so no other test's beats may run meanwhile.
test.serial("concurrent beats through the gateway share liveness calls, each answered on its own", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimes = await Promise.all(Array.from({ length: 39 }, () => seedRuntime(stack, ws)));
  // One more runtime, of a custom profile: deleting the profile deletes it.
  const profile = await http(stack.gatewayUrl, "POST", `/api/workspaces/${ws.workspaceId}/runtime-profiles`, {
    token: ws.admin.pat,
    body: { display_name: "doomed", protocol_family: "kimi", command_name: "kimi" },
  });
  const profileId = (profile.json as { id: string }).id;
  const registered = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token: ws.member.pat,
    body: { workspace_id: ws.workspaceId, daemon_id: `d-${randomUUID()}`, runtimes: [{ type: "kimi", version: "1", status: "online", profile_id: profileId }] },
  });
  const gone = (registered.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
  for (const id of [...runtimes, gone]) await beat(ws, id); // the gateway learns each runtime's workspace
  t.is((await http(stack.gatewayUrl, "DELETE", `/api/workspaces/${ws.workspaceId}/runtime-profiles/${profileId}`, { token: ws.admin.pat })).status, 204);
  await waitFor("liveness to learn the runtime is gone", () =>
    stack.liveness.getRuntimeLiveness({ runtimeId: gone }).then(
      () => false,
      (error: unknown) => (error as { code?: number }).code === status.NOT_FOUND,
    ),
  );
  const batchCalls = () => counterSum("grpc_server_handled_total", (l) => l.grpc_method === "HeartbeatBatch");
  const beatsAnswered = () => counterSum("liveness_heartbeats_total", () => true);
  const [callsBefore, beatsBefore] = [await batchCalls(), await beatsAnswered()];
  const answers = await Promise.all([...runtimes, gone].map((id) => beat(ws, id)));
  t.deepEqual(
    answers.slice(0, -1).map((a) => a.status),
    runtimes.map(() => 200),
  );
  t.is(answers.at(-1)!.text, '{"error":"runtime not found"}\n', "a gone runtime in the same batch gets its own 404");
  const calls = (await batchCalls()) - callsBefore;
  // Every beat reached liveness (none answered from elsewhere), in fewer calls than beats: some call carried several.
  t.is((await beatsAnswered()) - beatsBefore, 40, "each beat answered by liveness exactly once");
  t.true(calls >= 1 && calls < 40, `40 concurrent beats took ${calls} liveness calls`);
});

// Serial: the lookup counter is the process's (see above).
test.serial("a gateway meeting many runtimes at once looks them up in batches; an unknown one still answers 404", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimes = await Promise.all(Array.from({ length: 30 }, () => seedRuntime(stack, ws)));
  const lookups = async () =>
    (await metrics.getSingleMetric("grpc_server_handled_total")!.get()).values.find(
      (v) => v.labels.grpc_method === "GetRuntimeWorkspaces" && v.labels.grpc_code === "OK",
    )?.value ?? 0;
  const before = await lookups();
  const unknown = randomUUID();
  const answers = await Promise.all([...runtimes, unknown].map((id) => beat(ws, id)));
  t.deepEqual(
    answers.slice(0, -1).map((a) => a.status),
    runtimes.map(() => 200),
    "first beats of new runtimes",
  );
  t.is(answers.at(-1)!.text, '{"error":"runtime not found"}\n');
  const calls = (await lookups()) - before;
  t.true(calls >= 1 && calls < 31, `31 first beats took ${calls} registry lookups`);
});

async function flushNow(): Promise<number> {
  const { flushOnce } = await import("@controlplane/liveness/flusher");
  return flushOnce(stack.livenessService.deps);
}

test("a deregistered runtime's next beat flips it online at once, with one runtime.online", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  await beat(ws, runtimeId);
  await http(stack.gatewayUrl, "POST", "/api/daemon/deregister", { token: ws.member.pat, body: { runtime_ids: [runtimeId] } });
  await waitFor("liveness to see the deregister", async () => (await livenessRow(runtimeId)).status === "offline");
  const before = (await stack.events.read("runtime.online")).filter((e) => e.event.runtimeId === runtimeId).length;
  t.is((await beat(ws, runtimeId)).status, 200);
  t.is((await livenessRow(runtimeId)).status, "online", "written before the answer");
  await waitFor("runtime.online", async () => (await stack.events.read("runtime.online")).filter((e) => e.event.runtimeId === runtimeId).length === before + 1);
  await waitFor("the registry to follow", async () => (await stack.registry.getRuntime({ runtimeId })).runtime!.status === "online");
  await beat(ws, runtimeId);
  t.is((await stack.events.read("runtime.online")).filter((e) => e.event.runtimeId === runtimeId).length, before + 1, "no event for an online beat");
});

test("heartbeat errors: 400s, 404 runtime not found for a deleted runtime, 404 not found across workspaces", async (t) => {
  const ws = await seedWorkspace(stack);
  const other = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const post = (body: unknown, token = ws.member.pat) => http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token, body });
  t.is((await post({})).text, '{"error":"runtime_id is required"}\n');
  t.is((await post({ runtime_id: "x" })).text, '{"error":"invalid runtime_id"}\n');
  t.is((await post({ runtime_id: 5 })).text, '{"error":"invalid request body"}\n');
  t.is((await post({ runtime_id: randomUUID() })).text, '{"error":"runtime not found"}\n');
  t.is((await post({ runtime_id: runtimeId }, other.member.pat)).text, '{"error":"not found"}\n');
  t.is((await post({ runtime_id: runtimeId.toUpperCase() })).status, 200);
});

test("a beat's body is read as JSON whatever its Content-Type says, as the original read it", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const send = (contentType: string, body: string) =>
    http(stack.gatewayUrl, "POST", "/api/daemon/heartbeat", { token: ws.member.pat, rawBody: body, headers: { "content-type": contentType } });
  const beatBody = JSON.stringify({ runtime_id: runtimeId });
  for (const contentType of ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "APPLICATION/JSON"]) {
    for (let i = 0; i < 2; i++) {
      const answer = await send(contentType, beatBody);
      t.is(answer.status, 200, `${contentType} (request ${i + 1})`);
      t.is((await send(contentType, "{")).text, '{"error":"invalid request body"}\n', `${contentType}: a broken body`);
    }
  }
});

test("result routes: update lifecycle, wrong runtime, bad status, terminal reports, empty import bundles", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  await beat(ws, runtimeId);
  const update = await enqueue(runtimeId, ActionKind.ACTION_KIND_UPDATE, { targetVersion: "2.0.0" });
  const second = await t.throwsAsync(enqueue(runtimeId, ActionKind.ACTION_KIND_UPDATE, { targetVersion: "2.0.1" }));
  t.like(second as object, { details: "an update is already in progress for this runtime" });
  await beat(ws, runtimeId);
  const result = (id: string, body: unknown, runtime = runtimeId) =>
    http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtime}/update/${id}/result`, { token: ws.member.pat, body });
  t.is((await result(update.id, { status: "running" })).text, '{"status":"ok"}\n');
  t.is((await result(update.id, { status: "bogus" })).text, '{"error":"invalid status: bogus"}\n');
  t.is((await result(update.id, { status: "running" }, runtimeId.toUpperCase())).text, '{"error":"update not found"}\n');
  t.is((await result("00000000000000000000000000000000", { status: "completed" })).text, '{"error":"update not found"}\n');
  t.is((await result(update.id, { status: "completed", output: "Updated to 2.0.0" })).text, '{"status":"ok"}\n');
  t.is((await result(update.id, "not even an object")).text, '{"status":"ok"}\n', "terminal: answered before the body is read");
  const { action } = await stack.liveness.getAction({ actionId: update.id });
  t.like(action!, { status: "completed", resultJson: '{"output": "Updated to 2.0.0"}' });

  const bundle = await enqueue(runtimeId, ActionKind.ACTION_KIND_LOCAL_SKILL_IMPORT, { skillKey: "k" });
  await beat(ws, runtimeId);
  const importPath = `/api/daemon/runtimes/${runtimeId}/local-skills/import/${bundle.id}/result`;
  t.is((await http(stack.gatewayUrl, "POST", importPath, { token: ws.member.pat, body: { status: "completed" } })).status, 200);
  t.like((await stack.liveness.getAction({ actionId: bundle.id })).action!, { status: "failed", error: "daemon returned an empty skill bundle" });
  const finished = await waitFor("action.finished", async () => (await stack.events.read("action.finished")).find((e) => e.event.actionId === bundle.id));
  t.is(finished.event.status, "failed");
});

test("actions time out when the daemon never answers; a late report changes nothing", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  await beat(ws, runtimeId);
  const models = await enqueue(runtimeId, ActionKind.ACTION_KIND_MODEL_LIST);
  await query(stack.db.url, "UPDATE liveness.pending_action SET created_at = now() - interval '1 hour' WHERE id = $1", [models.id]);
  t.like((await stack.liveness.getAction({ actionId: models.id })).action!, {
    status: "timeout",
    error: "daemon did not respond within 30 seconds",
  });
  t.is((await beat(ws, runtimeId)).text, '{"status":"ok"}\n', "a timed-out action is not delivered");
  const late = await http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtimeId}/models/${models.id}/result`, {
    token: ws.member.pat,
    body: { status: "completed", models: [{ id: "m", label: "M" }] },
  });
  t.is(late.text, '{"status":"ok"}\n');
  t.is((await stack.liveness.getAction({ actionId: models.id })).action!.status, "timeout");
  const finished = await waitFor("action.finished", async () => (await stack.events.read("action.finished")).filter((e) => e.event.actionId === models.id));
  t.like(
    finished.map((e) => e.event),
    [{ status: "timeout", error: "daemon did not respond within 30 seconds" }],
  );
  await http(stack.gatewayUrl, "POST", "/api/daemon/deregister", { token: ws.member.pat, body: { runtime_ids: [runtimeId] } });
  await waitFor("liveness to see the deregister", async () => (await livenessRow(runtimeId)).status === "offline");
  const refused = await t.throwsAsync(enqueue(runtimeId, ActionKind.ACTION_KIND_MODEL_LIST));
  t.like(refused as object, { details: "runtime is offline" }, "a deregistered runtime is offline to liveness");
});

// Serial: the flip counter it reads must not move with other tests' beats.
test.serial("a registered runtime is online to liveness before its first beat, seen at its registration", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const { runtime } = await stack.registry.getRuntime({ runtimeId });
  const row = await waitFor("liveness to learn the registration", async () => {
    const stored = (
      await query<{ status: string; last_seen_at: Date | null }>(
        stack.db.url,
        "SELECT status, last_seen_at FROM liveness.runtime_liveness WHERE runtime_id = $1",
        [runtimeId],
      )
    )[0];
    return stored?.status === "online" ? stored : undefined;
  });
  t.is(row.last_seen_at!.getTime(), runtime!.lastSeenAt!.getTime());
  t.is((await enqueue(runtimeId, ActionKind.ACTION_KIND_MODEL_LIST)).status, "pending", "model requests are accepted");
  const flips = async () => (await metrics.getSingleMetric("liveness_online_flips_total")!.get()).values[0]?.value ?? 0;
  const before = await flips();
  t.is((await beat(ws, runtimeId)).status, 200);
  t.is(await flips(), before, "its first beat finds it online: no flip, so no runtime.online");
});

test("a beat over a daemon socket shows in GetRuntimeLiveness; HTTP beats leave last_socket_beat_at unset", async (t) => {
  const ws = await seedWorkspace(stack);
  const [socketRuntime, httpRuntime] = [await seedRuntime(stack, ws), await seedRuntime(stack, ws)];
  const before = Date.now();
  await stack.liveness.heartbeat({ runtimeId: socketRuntime, supportsBatchImport: true, viaSocket: true });
  await stack.liveness.heartbeat({ runtimeId: httpRuntime, supportsBatchImport: true, viaSocket: false });
  t.is((await beat(ws, httpRuntime)).status, 200, "and one through the gateway's HTTP route");
  const socket = await stack.liveness.getRuntimeLiveness({ runtimeId: socketRuntime });
  t.true(socket.lastSocketBeatAt!.getTime() >= before);
  t.deepEqual(socket.lastSocketBeatAt, socket.lastBeatAt, "the latest beat was the socket's");
  const plain = await stack.liveness.getRuntimeLiveness({ runtimeId: httpRuntime });
  t.truthy(plain.lastBeatAt);
  t.is(plain.lastSocketBeatAt, undefined);
  await stack.liveness.heartbeat({ runtimeId: socketRuntime, supportsBatchImport: true });
  const later = await stack.liveness.getRuntimeLiveness({ runtimeId: socketRuntime });
  t.deepEqual(later.lastSocketBeatAt, socket.lastSocketBeatAt, "an HTTP beat does not move the socket's time");
  t.true(later.lastBeatAt! >= socket.lastBeatAt!);
});

test("actions popped for an ack that never reached the daemon go back, and the next beat delivers them again", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  await beat(ws, runtimeId);
  const models = await enqueue(runtimeId, ActionKind.ACTION_KIND_MODEL_LIST);
  const first = await beat(ws, runtimeId);
  t.deepEqual(first.json, { status: "ok", pending_model_list: { id: models.id } });
  t.is((await beat(ws, runtimeId)).text, '{"status":"ok"}\n', "an empty beat in between: the mailbox hint is gone");
  const returned = await stack.liveness.returnActions({ runtimeId, actionIds: [models.id] });
  t.deepEqual(returned, { returnedCount: 1, returnedActionIds: [models.id] });
  const { action } = await stack.liveness.getAction({ actionId: models.id });
  t.like(action!, { status: "pending", runStartedAt: undefined });
  t.deepEqual((await beat(ws, runtimeId)).json, { status: "ok", pending_model_list: { id: models.id } }, "delivered again");
  t.is((await stack.liveness.getAction({ actionId: models.id })).action!.status, "running");
});

test("ReturnActions leaves an action the daemon already answered as it is", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  await beat(ws, runtimeId);
  const update = await enqueue(runtimeId, ActionKind.ACTION_KIND_UPDATE, { targetVersion: "3.0.0" });
  t.like((await beat(ws, runtimeId)).json as object, { pending_update: { id: update.id } });
  const report = await http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtimeId}/update/${update.id}/result`, {
    token: ws.member.pat,
    body: { status: "completed", output: "done" },
  });
  t.is(report.status, 200);
  t.deepEqual(await stack.liveness.returnActions({ runtimeId, actionIds: [update.id] }), { returnedCount: 0, returnedActionIds: [] });
  t.is((await stack.liveness.getAction({ actionId: update.id })).action!.status, "completed");
  t.is((await beat(ws, runtimeId)).text, '{"status":"ok"}\n', "nothing is delivered again");
});
