import { randomUUID } from "node:crypto";
import test from "ava";
import { createClient, status, type PromiseClient } from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { loadRegistryConfig } from "@controlplane/runtime-registry/config";
import { startRegistry } from "@controlplane/runtime-registry";
import { checkHealth, createTestDatabase, createTestEvents, query, testEnv, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";
import { loadProfileCatalogConfig } from "../src/config.js";
import { startProfileCatalog } from "../src/service.js";

let db: TestDatabase;
let events: TestEvents;
let stops: Array<() => Promise<void>> = [];
let client: PromiseClient<typeof ProfileCatalogServiceService>;
let address: string;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  const env = testEnv(db, events);
  const log = createLogger("test", env.LOG_LEVEL);
  const registry = await startRegistry(loadRegistryConfig(env), log);
  const catalog = await startProfileCatalog(loadProfileCatalogConfig({ ...env, REGISTRY_GRPC_ADDR: `127.0.0.1:${registry.port}` }), log);
  address = `127.0.0.1:${catalog.port}`;
  client = createClient(ProfileCatalogServiceService, address);
  stops = [async () => client.close(), catalog.stop, registry.stop];
});

test.after.always(async () => {
  for (const stop of stops) await stop();
  await events?.close();
  await db?.drop();
});

function request(workspaceId: string, displayName: string) {
  return { workspaceId, displayName, protocolFamily: "codex", commandName: "codex", fixedArgs: ["--x"], visibility: "" };
}

test("health reports SERVING for the catalog and the process", async (t) => {
  t.is(await checkHealth(address), "SERVING");
  t.is(await checkHealth(address, "controlplane.profiles.v1.ProfileCatalogService"), "SERVING");
});

test.serial("create, update and delete each publish one event after commit", async (t) => {
  const workspaceId = randomUUID();
  const actor = randomUUID();
  const { profile } = await client.createProfile({ ...request(workspaceId, "events"), createdBy: actor });
  await client.updateProfile({ workspaceId, profileId: profile!.id, enabled: false, actorId: actor });
  const { detachedRuntimeCount } = await client.deleteProfile({ workspaceId, profileId: profile!.id, actorId: actor });
  t.is(detachedRuntimeCount, 0);

  const deleted = await waitFor("profile.deleted", async () => {
    const all = await events.read("profile.deleted");
    return all.length > 0 ? all : undefined;
  });
  const created = await events.read("profile.created");
  const updated = await events.read("profile.updated");
  t.is(created.length, 1);
  t.is(updated.length, 1);
  t.is(deleted.length, 1);
  t.like(created[0]!.event, { meta: { workspaceId, actorId: actor }, profile: { id: profile!.id, displayName: "events", enabled: true } });
  t.like(updated[0]!.event, { profile: { id: profile!.id, enabled: false } });
  t.like(deleted[0]!.event, { profileId: profile!.id, detachedRuntimeCount: 0 });
  t.is(created[0]!.msgId, created[0]!.event.meta!.eventId);
  t.true(created[0]!.event.meta!.occurredAt! <= deleted[0]!.event.meta!.occurredAt!);
});

test.serial("a refused create or update writes neither a row nor an event", async (t) => {
  const workspaceId = randomUUID();
  const { profile } = await client.createProfile(request(workspaceId, "taken"));
  const duplicate = await t.throwsAsync(client.createProfile(request(workspaceId, "taken")));
  t.like(duplicate as object, { code: status.ALREADY_EXISTS, details: "a runtime profile with this display_name already exists" });
  const invalid = await t.throwsAsync(client.updateProfile({ workspaceId, profileId: profile!.id, commandName: " " }));
  t.like(invalid as object, { code: status.INVALID_ARGUMENT, details: "command_name cannot be empty" });
  const missing = await t.throwsAsync(client.updateProfile({ workspaceId: randomUUID(), profileId: profile!.id, enabled: false }));
  t.like(missing as object, { code: status.NOT_FOUND, details: "runtime profile not found" });

  // A marker after the refusals proves the relay has passed them.
  await client.createProfile(request(workspaceId, "marker"));
  await waitFor("the marker event", async () => (await events.read("profile.created")).some(({ event }) => event.profile!.displayName === "marker"));
  const forWorkspace = (await events.read("profile.created")).filter(({ event }) => event.meta!.workspaceId === workspaceId);
  t.deepEqual(
    forWorkspace.map(({ event }) => event.profile!.displayName),
    ["taken", "marker"],
  );
  t.is((await events.read("profile.updated")).filter(({ event }) => event.meta!.workspaceId === workspaceId).length, 0);
  const rows = await query(db.url, "SELECT display_name FROM profiles.runtime_profile WHERE workspace_id = $1 ORDER BY created_at", [workspaceId]);
  t.deepEqual(rows, [{ display_name: "taken" }, { display_name: "marker" }]);
});

test("ids that are not UUIDs are INVALID_ARGUMENT, never INTERNAL", async (t) => {
  const badWorkspace = await t.throwsAsync(client.listProfiles({ workspaceId: "nope", enabledOnly: false }));
  t.like(badWorkspace as object, { code: status.INVALID_ARGUMENT, details: "invalid workspace_id" });
  const badProfile = await t.throwsAsync(client.getProfile({ workspaceId: randomUUID(), profileId: "nope" }));
  t.like(badProfile as object, { code: status.INVALID_ARGUMENT, details: "invalid profile id" });
});

test("fixed_args are stored as a JSON array, untrimmed", async (t) => {
  const workspaceId = randomUUID();
  await client.createProfile({ ...request(workspaceId, "args"), fixedArgs: [" a ", "b"] });
  const rows = await query<{ fixed_args: unknown }>(db.url, "SELECT fixed_args FROM profiles.runtime_profile WHERE workspace_id = $1", [workspaceId]);
  t.deepEqual(rows[0]!.fixed_args, [" a ", "b"]);
});
