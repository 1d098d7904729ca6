import { randomUUID } from "node:crypto";
import test from "ava";
import { closeEventBus, connectEventBus, encodeEvent, EventMeta, subjectFor, type EventBus, type EventType, type EventBody } from "@controlplane/events";
import { status } from "@controlplane/grpc";
import { NATS_URL, query, waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";

let stack: Stack;
let bus: EventBus;
test.before(async () => {
  // Abandoned runtimes are collected after 1 s here, when a test runs the collector (runOnce).
  stack = await startStack({ RUNTIME_GC_INTERVAL_MS: "3600000", RUNTIME_GC_RETENTION_MS: "1000" });
  bus = await connectEventBus({ url: NATS_URL, name: "test", stream: stack.events.stream, subjectRoot: stack.events.subjectRoot });
});
test.after.always(async () => {
  if (bus) await closeEventBus(bus);
  await stack?.stop();
});

async function registerOne(
  ws: SeededWorkspace,
  runtime: Record<string, unknown> = { type: "claude", version: "1", status: "online" },
  daemonId = `d-${randomUUID()}`,
) {
  const answer = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token: ws.member.pat,
    body: { workspace_id: ws.workspaceId, daemon_id: daemonId, runtimes: [runtime] },
  });
  return (answer.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
}

function agentRequest(ws: SeededWorkspace, runtimeId: string, extra: Record<string, unknown> = {}) {
  return {
    workspaceId: ws.workspaceId,
    runtimeId,
    name: "agent",
    instructions: "be helpful",
    customEnv: { B: "2", A: "1" },
    customArgs: ["--verbose"],
    runtimeConfigJson: "",
    skills: [{ id: randomUUID(), name: "lint", description: "", content: "run eslint", files: [{ path: "a.md", content: "x" }] }],
    maxConcurrentTasks: 0,
    visibility: "",
    ...extra,
  };
}

/** Publishes an event as another service's outbox relay would. */
async function publish<T extends EventType>(type: T, body: EventBody<T>, workspaceId: string, occurredAt: Date) {
  const eventId = randomUUID();
  const payload = { ...body, meta: EventMeta.fromPartial({ eventId, workspaceId, occurredAt }) };
  await bus.js.publish(subjectFor(bus.subjectRoot, type), encodeEvent(type, payload as never), { msgID: eventId });
}

test("agents: created with defaults, updated, archived, listed; bad input refused", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await registerOne(ws);
  const { agent, created } = await stack.registry.upsertAgent(agentRequest(ws, runtimeId, { mcpConfigJson: '{"servers": {}}', model: "opus" }));
  t.true(created);
  t.like(agent!, { maxConcurrentTasks: 6, visibility: "private", runtimeConfigJson: "{}", model: "opus", customEnv: { A: "1", B: "2" } });
  t.is(agent!.skills[0]!.files[0]!.path, "a.md");
  const updated = await stack.registry.upsertAgent(agentRequest(ws, runtimeId, { agentId: agent!.id, name: "renamed", maxConcurrentTasks: 2 }));
  t.false(updated.created);
  t.like(updated.agent!, { id: agent!.id, name: "renamed", maxConcurrentTasks: 2, mcpConfigJson: undefined });
  await stack.registry.archiveAgent({ workspaceId: ws.workspaceId, agentId: agent!.id });
  t.deepEqual((await stack.registry.listAgents({ workspaceId: ws.workspaceId, includeArchived: false })).agents, []);
  t.is((await stack.registry.listAgents({ workspaceId: ws.workspaceId, runtimeId, includeArchived: true })).agents.length, 1);

  const other = await seedWorkspace(stack);
  const cases: Array<[Record<string, unknown>, status, string]> = [
    [{ name: " " }, status.INVALID_ARGUMENT, "name is required"],
    [{ runtimeId: await registerOne(other) }, status.NOT_FOUND, "runtime not found"],
    [{ runtimeConfigJson: "{oops" }, status.INVALID_ARGUMENT, "runtime_config must be valid JSON"],
    [{ visibility: "public" }, status.INVALID_ARGUMENT, "visibility must be 'workspace' or 'private'"],
    [{ agentId: randomUUID() }, status.NOT_FOUND, "agent not found"],
  ];
  for (const [extra, code, details] of cases) {
    const error = await t.throwsAsync(stack.registry.upsertAgent(agentRequest(ws, runtimeId, extra)));
    t.like(error as object, { code, details });
  }
});

test("deleting a profile is refused (409) while an active agent is bound to its runtime, then removes the runtime", async (t) => {
  const ws = await seedWorkspace(stack);
  const created = await http(stack.gatewayUrl, "POST", `/api/workspaces/${ws.workspaceId}/runtime-profiles`, {
    token: ws.admin.pat,
    body: { display_name: "bound", protocol_family: "kimi", command_name: "kimi" },
  });
  const profileId = (created.json as { id: string }).id;
  const runtimeId = await registerOne(ws, { type: "kimi", version: "1", status: "online", profile_id: profileId });
  const { agent } = await stack.registry.upsertAgent(agentRequest(ws, runtimeId));
  const path = `/api/workspaces/${ws.workspaceId}/runtime-profiles/${profileId}`;

  const refused = await http(stack.gatewayUrl, "DELETE", path, { token: ws.admin.pat });
  t.is(refused.status, 409);
  t.is(refused.text, '{"error":"cannot delete runtime profile: active agents are still bound to its runtimes"}\n');
  t.is((await http(stack.gatewayUrl, "GET", path, { token: ws.admin.pat })).status, 200, "the profile is still there");

  await stack.registry.archiveAgent({ workspaceId: ws.workspaceId, agentId: agent!.id });
  t.is((await http(stack.gatewayUrl, "DELETE", path, { token: ws.admin.pat })).status, 204);
  const gone = await t.throwsAsync(stack.registry.getRuntime({ runtimeId }));
  t.like(gone as object, { code: status.NOT_FOUND, details: "runtime not found" });
  t.deepEqual(await query(stack.db.url, "SELECT id FROM registry.agent WHERE id = $1", [agent!.id]), [], "archived agent removed");
  const deleted = await waitFor("profile.deleted", async () => (await stack.events.read("profile.deleted")).find((e) => e.event.profileId === profileId));
  t.is(deleted.event.detachedRuntimeCount, 1);
});

test("status follows liveness events in event-time order, ignoring stale and repeated ones", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await registerOne(ws);
  // An agent keeps the offline runtime from this file's fast garbage collection while the events arrive.
  await stack.registry.upsertAgent(agentRequest(ws, runtimeId));
  const statusOf = async () => (await stack.registry.getRuntime({ runtimeId })).runtime!.status;
  const now = Date.now();
  await publish("runtime.offline", { runtimeId, reason: 2 }, ws.workspaceId, new Date(now + 1_000));
  await waitFor("offline", async () => (await statusOf()) === "offline");
  // Older than the change just applied: ignored.
  await publish("runtime.online", { runtimeId }, ws.workspaceId, new Date(now + 500));
  await publish("runtime.online", { runtimeId, lastSeenAt: new Date(now + 3_000) }, ws.workspaceId, new Date(now + 2_000));
  await waitFor("online again", async () => (await statusOf()) === "online");
  const rows = await query<{ status_changed_at: Date }>(stack.db.url, "SELECT status_changed_at FROM registry.agent_runtime WHERE id = $1", [runtimeId]);
  t.is(rows[0]!.status_changed_at.getTime(), now + 2_000, "the newest event's time, not the stale one's");
  t.is((await stack.registry.getRuntime({ runtimeId })).runtime!.lastSeenAt!.getTime(), now + 3_000);
});

test("offline runtimes with no agent are collected after the retention; ones with agents stay", async (t) => {
  const ws = await seedWorkspace(stack);
  const lonely = await registerOne(ws);
  const withAgent = await registerOne(ws);
  const { agent } = await stack.registry.upsertAgent(agentRequest(ws, withAgent));
  await stack.registry.archiveAgent({ workspaceId: ws.workspaceId, agentId: agent!.id });
  await http(stack.gatewayUrl, "POST", "/api/daemon/deregister", { token: ws.member.pat, body: { runtime_ids: [lonely, withAgent] } });
  const retention = Number(stack.env.RUNTIME_GC_RETENTION_MS);
  const event = await waitFor(
    "runtime.deleted (collected)",
    async () => {
      await stack.registryService.jobs.runtimeGc.runOnce();
      return (await stack.events.read("runtime.deleted")).find((e) => e.event.runtimeId === lonely);
    },
    { timeoutMs: 8 * retention, intervalMs: retention / 5 },
  );
  t.is(event.event.reason, 3);
  t.is((await stack.registry.getRuntime({ runtimeId: withAgent })).runtime!.status, "offline", "a runtime an archived agent refers to stays");
});

test("GetRuntimeWorkspaces answers many runtimes in one read, leaving out unknown and malformed ids", async (t) => {
  const ws = await seedWorkspace(stack);
  const other = await seedWorkspace(stack);
  const mine = await registerOne(ws);
  const theirs = await registerOne(other);
  const { workspaceIds } = await stack.registry.getRuntimeWorkspaces({
    runtimeIds: [mine, theirs.toUpperCase(), randomUUID(), "not-a-uuid", mine],
  });
  t.deepEqual(workspaceIds, { [mine]: ws.workspaceId, [theirs]: other.workspaceId });
  const tooMany = await t.throwsAsync(stack.registry.getRuntimeWorkspaces({ runtimeIds: Array.from({ length: 1_001 }, () => randomUUID()) }));
  t.like(tooMany as object, { code: status.INVALID_ARGUMENT, details: "at most 1000 runtime_ids per call" });
});
