import { randomUUID } from "node:crypto";
import test from "ava";
import { SignJWT } from "jose";
import { createDbPool, Outbox, type DatabasePool } from "@controlplane/db";
import { closeEventBus, connectEventBus, type EventBus, type EventPayload, type EventType } from "@controlplane/events";
import { createClient, status, type PromiseClient } from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { IdentityServiceService, MemberRole, TokenKind } from "@controlplane/proto/registry/v1/identity";
import { createTestDatabase, createTestEvents, NATS_URL, query, testEnv, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";
import { loadRegistryConfig } from "../src/config.js";
import { addMember, removeMember } from "../src/members.js";
import { startRegistry } from "../src/service.js";
import { revokeToken } from "../src/tokens.js";

const SECRET = "registry-test-secret-0123456789";
const log = createLogger("test", "silent");
let db: TestDatabase;
let events: TestEvents;
let stop: () => Promise<void>;
let identity: PromiseClient<typeof IdentityServiceService>;
/** A connection of the test's own, for calling the domain with an outbox that fails. */
let pool: DatabasePool;
let bus: EventBus;
let failing: Outbox;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  const env = testEnv(db, events, { JWT_SECRET: SECRET });
  const registry = await startRegistry(loadRegistryConfig(env), createLogger("test", env.LOG_LEVEL));
  identity = createClient(IdentityServiceService, `127.0.0.1:${registry.port}`);
  stop = registry.stop;
  pool = await createDbPool(db.url, { name: "registry-test", maxSize: 2 });
  bus = await connectEventBus({ url: NATS_URL, name: "registry-test", stream: events.stream, subjectRoot: events.subjectRoot });
  failing = failingOutbox(new Outbox(pool, "registry", bus, log));
});

test.after.always(async () => {
  identity?.close();
  await stop?.();
  if (bus) await closeEventBus(bus);
  await pool?.end();
  await events?.close();
  await db?.drop();
});

/** The registry's outbox, except that recording an event fails (inside the caller's transaction). Never started. */
function failingOutbox(outbox: Outbox): Outbox {
  const broken = Object.create(outbox) as Outbox;
  broken.writeMany = () => Promise.reject(new Error("injected: outbox write failed"));
  return broken;
}

const newWorkspace = async (ownerUserId?: string) =>
  (
    await identity.createWorkspace({
      name: `ws-${randomUUID().slice(0, 8)}`,
      slug: "",
      description: "",
      repos: [],
      settingsJson: "",
      issuePrefix: "",
      ownerUserId,
    })
  ).workspace!.id;

/**
 * Every event of `type` that `pick` selects, once everything committed so
 * far has been published (the registry's outbox is empty): so an event that
 * should not exist has had every chance to show up.
 */
async function published<T extends EventType>(type: T, pick: (event: EventPayload<T>) => boolean): Promise<Array<EventPayload<T>>> {
  await waitFor("the registry's outbox to drain", async () => (await query<{ n: string }>(db.url, "SELECT count(*) AS n FROM registry.outbox"))[0]!.n === "0");
  return (await events.read(type)).map((e) => e.event).filter(pick);
}

test("AddMember publishes member.added once per change: a new member, a role change with its previous role, nothing for the same role", async (t) => {
  const workspaceId = await newWorkspace();
  const userId = randomUUID();
  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_MEMBER });
  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_MEMBER });
  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_ADMIN });
  const added = await published("member.added", (e) => e.userId === userId);
  t.like(added, [
    { meta: { workspaceId }, userId, role: MemberRole.MEMBER_ROLE_MEMBER, previousRole: undefined },
    { meta: { workspaceId }, userId, role: MemberRole.MEMBER_ROLE_ADMIN, previousRole: MemberRole.MEMBER_ROLE_MEMBER },
  ]);
  t.is(added.length, 2, "the same role again announced nothing");
});

test("concurrent AddMembers of one user announce one membership and only real role changes", async (t) => {
  const workspaceId = await newWorkspace();
  const userId = randomUUID();
  const roles = [MemberRole.MEMBER_ROLE_MEMBER, MemberRole.MEMBER_ROLE_ADMIN, MemberRole.MEMBER_ROLE_MEMBER, MemberRole.MEMBER_ROLE_ADMIN];
  await Promise.all(roles.map((role) => identity.addMember({ workspaceId, userId, role })));
  const added = await published("member.added", (e) => e.userId === userId);
  t.is(added.filter((e) => e.previousRole === undefined).length, 1, "one membership started");
  // Replaying the events in order lands on the stored role, each naming the role it replaced.
  let role: MemberRole | undefined;
  for (const event of added) {
    t.is(event.previousRole, role);
    t.not(event.role, role);
    role = event.role;
  }
  t.is(role, (await identity.getMembership({ workspaceId, userId })).member!.role);
});

test("RemoveMember publishes member.removed with the role the member had; removing a stranger publishes nothing", async (t) => {
  const workspaceId = await newWorkspace();
  const userId = randomUUID();
  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_ADMIN });
  await identity.removeMember({ workspaceId, userId });
  const again = await t.throwsAsync(identity.removeMember({ workspaceId, userId }));
  t.like(again as object, { code: status.NOT_FOUND, details: "member not found" });
  const removed = await published("member.removed", (e) => e.userId === userId);
  t.like(removed, [{ meta: { workspaceId }, userId, role: MemberRole.MEMBER_ROLE_ADMIN }]);
  t.is(removed.length, 1);
});

test("CreateWorkspace publishes member.added for its owner", async (t) => {
  const owner = randomUUID();
  const workspaceId = await newWorkspace(owner);
  const added = await published("member.added", (e) => e.userId === owner);
  t.like(added, [{ meta: { workspaceId }, userId: owner, role: MemberRole.MEMBER_ROLE_OWNER, previousRole: undefined }]);
  t.is(added.length, 1);
});

test("RevokeToken publishes token.revoked once per token, naming its kind, and its user or workspace and daemon", async (t) => {
  const workspaceId = await newWorkspace();
  const daemon = await identity.issueDaemonToken({ workspaceId, daemonId: "laptop", ttlSeconds: 0 });
  const userId = randomUUID();
  const pat = await identity.issuePersonalAccessToken({ userId, name: "cli", ttlSeconds: 0 });
  for (const id of [daemon.info!.id, daemon.info!.id, pat.info!.id, pat.info!.id]) await identity.revokeToken({ tokenId: id });
  const revoked = await published("token.revoked", (e) => e.tokenId === daemon.info!.id || e.tokenId === pat.info!.id);
  t.deepEqual(
    revoked.map(({ meta, ...body }) => ({ workspace: meta!.workspaceId, ...body })),
    [
      { workspace: workspaceId, tokenId: daemon.info!.id, kind: TokenKind.TOKEN_KIND_DAEMON, userId: undefined, workspaceId, daemonId: "laptop" },
      { workspace: "", tokenId: pat.info!.id, kind: TokenKind.TOKEN_KIND_PERSONAL_ACCESS, userId, workspaceId: undefined, daemonId: undefined },
    ],
  );
});

test("ResolveToken gives the token id of daemon tokens and PATs, and none for a JWT", async (t) => {
  const workspaceId = await newWorkspace();
  const daemon = await identity.issueDaemonToken({ workspaceId, daemonId: "laptop", ttlSeconds: 0 });
  const userId = randomUUID();
  const pat = await identity.issuePersonalAccessToken({ userId, name: "cli", ttlSeconds: 0 });
  t.is((await identity.resolveToken({ token: daemon.token })).identity!.tokenId, daemon.info!.id);
  t.is((await identity.resolveToken({ token: pat.token })).identity!.tokenId, pat.info!.id);
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(userId).setExpirationTime("1h").sign(new TextEncoder().encode(SECRET));
  t.is((await identity.resolveToken({ token: jwt })).identity!.tokenId, undefined);
});

test("a change whose event cannot be recorded does not happen", async (t) => {
  const workspaceId = await newWorkspace();
  const userId = randomUUID();
  await t.throwsAsync(addMember(failing, workspaceId, userId, MemberRole.MEMBER_ROLE_MEMBER), { message: /injected/ });
  t.like(await t.throwsAsync(identity.getMembership({ workspaceId, userId })), { code: status.NOT_FOUND }, "no member without member.added");

  await identity.addMember({ workspaceId, userId, role: MemberRole.MEMBER_ROLE_MEMBER });
  await t.throwsAsync(addMember(failing, workspaceId, userId, MemberRole.MEMBER_ROLE_ADMIN), { message: /injected/ });
  await t.throwsAsync(removeMember(failing, workspaceId, userId), { message: /injected/ });
  t.is((await identity.getMembership({ workspaceId, userId })).member!.role, MemberRole.MEMBER_ROLE_MEMBER, "role and membership kept");

  const daemon = await identity.issueDaemonToken({ workspaceId, daemonId: "d", ttlSeconds: 0 });
  await t.throwsAsync(revokeToken(failing, daemon.info!.id), { message: /injected/ });
  t.is((await identity.resolveToken({ token: daemon.token })).identity!.tokenId, daemon.info!.id, "the token still resolves");
});
