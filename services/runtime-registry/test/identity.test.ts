import { randomUUID } from "node:crypto";
import test from "ava";
import { SignJWT } from "jose";
import { createClient, status, type PromiseClient } from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { IdentityServiceService, MemberRole, TokenKind } from "@controlplane/proto/registry/v1/identity";
import { checkHealth, createTestDatabase, createTestEvents, testEnv, type TestDatabase, type TestEvents } from "@controlplane/testkit";
import { loadRegistryConfig } from "../src/config.js";
import { startRegistry } from "../src/service.js";

const SECRET = "registry-test-secret-0123456789";
let db: TestDatabase;
let events: TestEvents;
let stop: () => Promise<void>;
let identity: PromiseClient<typeof IdentityServiceService>;
let address: string;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  const env = testEnv(db, events, { JWT_SECRET: SECRET });
  const registry = await startRegistry(loadRegistryConfig(env), createLogger("test", env.LOG_LEVEL));
  address = `127.0.0.1:${registry.port}`;
  identity = createClient(IdentityServiceService, address);
  stop = registry.stop;
});

test.after.always(async () => {
  identity?.close();
  await stop?.();
  await events?.close();
  await db?.drop();
});

const newWorkspace = (name: string, extra: Partial<Parameters<typeof identity.createWorkspace>[0]> = {}) =>
  identity.createWorkspace({ name, slug: "", description: "", repos: [], settingsJson: "", issuePrefix: "", ...extra });

test("health reports SERVING for both registry services", async (t) => {
  t.is(await checkHealth(address, "controlplane.registry.v1.IdentityService"), "SERVING");
  t.is(await checkHealth(address, "controlplane.registry.v1.RuntimeRegistryService"), "SERVING");
});

test("workspaces: slug derived from the name, unique, settings must be an object", async (t) => {
  const { workspace } = await newWorkspace("Hello, World!");
  t.is(workspace!.slug, "hello-world");
  t.is(workspace!.settingsJson, "{}");
  const duplicate = await t.throwsAsync(newWorkspace("Hello World"));
  t.like(duplicate as object, { code: status.ALREADY_EXISTS });
  const noName = await t.throwsAsync(newWorkspace("  "));
  t.like(noName as object, { code: status.INVALID_ARGUMENT, details: "name is required" });
  const badSettings = await t.throwsAsync(newWorkspace("settings", { settingsJson: "[1]" }));
  t.like(badSettings as object, { code: status.INVALID_ARGUMENT, details: "settings must be a JSON object" });
  const missing = await t.throwsAsync(identity.getWorkspace({ workspaceId: randomUUID() }));
  t.like(missing as object, { code: status.NOT_FOUND, details: "workspace not found" });
});

test("membership: owner on create, role changes, removal, NOT_FOUND for strangers and junk ids", async (t) => {
  const owner = randomUUID();
  const { workspace } = await newWorkspace(`members-${owner.slice(0, 8)}`, { ownerUserId: owner });
  const workspaceId = workspace!.id;
  t.is((await identity.getMembership({ workspaceId, userId: owner })).member!.role, MemberRole.MEMBER_ROLE_OWNER);
  const user = randomUUID();
  await identity.addMember({ workspaceId, userId: user, role: MemberRole.MEMBER_ROLE_MEMBER });
  await identity.addMember({ workspaceId, userId: user, role: MemberRole.MEMBER_ROLE_ADMIN });
  t.is((await identity.getMembership({ workspaceId, userId: user })).member!.role, MemberRole.MEMBER_ROLE_ADMIN);
  t.deepEqual(
    (await identity.listWorkspaces({ userId: user })).workspaces.map((w) => w.id),
    [workspaceId],
  );
  await identity.removeMember({ workspaceId, userId: user });
  for (const [ws, u] of [
    [workspaceId, user],
    [workspaceId, "junk"],
    ["junk", owner],
  ]) {
    const error = await t.throwsAsync(identity.getMembership({ workspaceId: ws!, userId: u! }));
    t.like(error as object, { code: status.NOT_FOUND, details: "workspace not found" });
  }
  const unknownWorkspace = await t.throwsAsync(identity.addMember({ workspaceId: randomUUID(), userId: user, role: MemberRole.MEMBER_ROLE_MEMBER }));
  t.like(unknownWorkspace as object, { code: status.NOT_FOUND });
  const noRole = await t.throwsAsync(identity.addMember({ workspaceId, userId: user, role: MemberRole.MEMBER_ROLE_UNSPECIFIED }));
  t.like(noRole as object, { code: status.INVALID_ARGUMENT });
});

test("resolve: daemon token, PAT and JWT each give their identity", async (t) => {
  const { workspace } = await newWorkspace(`resolve-${randomUUID().slice(0, 8)}`);
  const daemon = await identity.issueDaemonToken({ workspaceId: workspace!.id, daemonId: "laptop", ttlSeconds: 0 });
  t.like((await identity.resolveToken({ token: daemon.token })).identity!, {
    kind: TokenKind.TOKEN_KIND_DAEMON,
    workspaceId: workspace!.id,
    daemonId: "laptop",
    expiresAt: undefined,
  });
  const user = randomUUID();
  const pat = await identity.issuePersonalAccessToken({ userId: user, name: "cli", ttlSeconds: 60 });
  const patIdentity = (await identity.resolveToken({ token: pat.token })).identity!;
  t.like(patIdentity, { kind: TokenKind.TOKEN_KIND_PERSONAL_ACCESS, userId: user });
  t.true(patIdentity.expiresAt! > new Date());
  const jwt = await new SignJWT({ email: "a@example.com" })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(user)
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));
  t.like((await identity.resolveToken({ token: jwt })).identity!, { kind: TokenKind.TOKEN_KIND_JWT, userId: user, email: "a@example.com" });
});

test("listing tokens never reveals secrets; revoking is idempotent", async (t) => {
  const { workspace } = await newWorkspace(`list-${randomUUID().slice(0, 8)}`);
  const issued = await identity.issueDaemonToken({ workspaceId: workspace!.id, daemonId: "d", ttlSeconds: 3600 });
  const { tokens } = await identity.listTokens({ workspaceId: workspace!.id });
  t.is(tokens.length, 1);
  t.false(JSON.stringify(tokens).includes(issued.token));
  t.true(issued.token.startsWith(tokens[0]!.prefix));
  const first = await identity.revokeToken({ tokenId: issued.info!.id });
  const second = await identity.revokeToken({ tokenId: issued.info!.id });
  t.deepEqual(first.info!.revokedAt, second.info!.revokedAt);
  const unknown = await t.throwsAsync(identity.revokeToken({ tokenId: randomUUID() }));
  t.like(unknown as object, { code: status.NOT_FOUND, details: "token not found" });
  const badDaemon = await t.throwsAsync(identity.issueDaemonToken({ workspaceId: workspace!.id, daemonId: " ", ttlSeconds: 0 }));
  t.like(badDaemon as object, { code: status.INVALID_ARGUMENT, details: "daemon_id is required" });
});
