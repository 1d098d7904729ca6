import { randomUUID } from "node:crypto";
import test from "ava";
import { LIMITS } from "@controlplane/config";
import { createClient, isServiceError, status, type PromiseClient } from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { loadRegistryConfig } from "@controlplane/runtime-registry/config";
import { startRegistry } from "@controlplane/runtime-registry";
import { createTestDatabase, createTestEvents, query, testEnv, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";
import { loadProfileCatalogConfig } from "../src/config.js";
import { startProfileCatalog } from "../src/service.js";

let db: TestDatabase;
let events: TestEvents;
let stops: Array<() => Promise<void>> = [];
let client: PromiseClient<typeof ProfileCatalogServiceService>;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  const env = testEnv(db, events);
  const log = createLogger("test", env.LOG_LEVEL);
  const registry = await startRegistry(loadRegistryConfig(env), log);
  const catalog = await startProfileCatalog(loadProfileCatalogConfig({ ...env, REGISTRY_GRPC_ADDR: `127.0.0.1:${registry.port}` }), log);
  client = createClient(ProfileCatalogServiceService, `127.0.0.1:${catalog.port}`);
  stops = [async () => client.close(), catalog.stop, registry.stop];
});

test.after.always(async () => {
  for (const stop of stops) await stop();
  await events?.close();
  await db?.drop();
});

const base = (workspaceId: string) => ({ workspaceId, displayName: "p", protocolFamily: "codex", commandName: "codex", fixedArgs: [], visibility: "" });

async function refusal(work: Promise<unknown>) {
  try {
    await work;
  } catch (error) {
    if (isServiceError(error)) return { code: error.code, details: error.details };
    throw error;
  }
  throw new Error("the call was expected to fail");
}

test("internal gRPC callers meet the bounds: INVALID_ARGUMENT, no row, no event", async (t) => {
  const workspaceId = randomUUID();
  const refused: Array<[Record<string, unknown>, string]> = [
    [{ description: "d".repeat(LIMITS.DESCRIPTION_CHARS + 1) }, "description too long"],
    [{ description: "a\u0000b" }, "description must not contain NUL characters"],
    [{ displayName: "n".repeat(LIMITS.NAME_CHARS + 1) }, "display_name too long"],
    [{ fixedArgs: Array(LIMITS.FIXED_ARGS + 1).fill("--a") }, "too many fixed_args"],
    [{ fixedArgs: ["/".repeat(LIMITS.PATH_CHARS + 1)] }, "fixed_args entry too long"],
  ];
  for (const [fields, details] of refused) {
    t.deepEqual(await refusal(client.createProfile({ ...base(workspaceId), ...fields })), { code: status.INVALID_ARGUMENT, details }, details);
  }
  const { profile } = await client.createProfile({ ...base(workspaceId), description: "ok" });
  t.deepEqual(await refusal(client.updateProfile({ workspaceId, profileId: profile!.id, commandName: "c\u0000" })), {
    code: status.INVALID_ARGUMENT,
    details: "command_name must not contain NUL characters",
  });
  const rows = await query<{ description: string; command_name: string }>(
    db.url,
    "SELECT description, command_name FROM profiles.runtime_profile WHERE workspace_id = $1",
    [workspaceId],
  );
  t.deepEqual(rows, [{ description: "ok", command_name: "codex" }]);
  const created = await waitFor("profile.created", async () => {
    const mine = (await events.read("profile.created")).filter(({ event }) => event.meta!.workspaceId === workspaceId);
    return mine.length > 0 ? mine : undefined;
  });
  t.is(created.length, 1, "only the accepted create published");
  t.is((await events.read("profile.updated")).filter(({ event }) => event.meta!.workspaceId === workspaceId).length, 0);
});
