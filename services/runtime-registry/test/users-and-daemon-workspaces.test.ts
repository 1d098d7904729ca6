import { randomUUID } from "node:crypto";
import test from "ava";
import { createClient, status, type PromiseClient } from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { IdentityServiceService, MemberRole, type User } from "@controlplane/proto/registry/v1/identity";
import { createTestDatabase, createTestEvents, testEnv, type TestDatabase, type TestEvents } from "@controlplane/testkit";
import { loadRegistryConfig } from "../src/config.js";
import { startRegistry } from "../src/service.js";

let db: TestDatabase;
let events: TestEvents;
let stop: () => Promise<void>;
let identity: PromiseClient<typeof IdentityServiceService>;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  const env = testEnv(db, events, { JWT_SECRET: "registry-test-secret-0123456789" });
  const registry = await startRegistry(loadRegistryConfig(env), createLogger("test", env.LOG_LEVEL));
  identity = createClient(IdentityServiceService, `127.0.0.1:${registry.port}`);
  stop = registry.stop;
});

test.after.always(async () => {
  identity?.close();
  await stop?.();
  await events?.close();
  await db?.drop();
});

const newWorkspace = async (name: string) =>
  (await identity.createWorkspace({ name, slug: "", description: "", repos: [], settingsJson: "", issuePrefix: "" })).workspace!;

test("ListDaemonWorkspaces: a user's memberships by id, a daemon token's workspace, NOT_FOUND for a gone one", async (t) => {
  const user = randomUUID();
  const made = [];
  for (const name of ["c", "a", "b"]) {
    const workspace = await newWorkspace(`${name}-${user.slice(0, 8)}`);
    await identity.addMember({ workspaceId: workspace.id, userId: user, role: MemberRole.MEMBER_ROLE_MEMBER });
    made.push({ id: workspace.id, name: workspace.name });
  }
  await newWorkspace(`other-${user.slice(0, 8)}`);
  const mine = await identity.listDaemonWorkspaces({ caller: { $case: "userId", value: user.toUpperCase() } });
  t.deepEqual(
    mine.workspaces,
    [...made].sort((x, y) => (x.id < y.id ? -1 : 1)),
  );
  t.deepEqual((await identity.listDaemonWorkspaces({ caller: { $case: "userId", value: "junk" } })).workspaces, []);

  const one = await identity.listDaemonWorkspaces({ caller: { $case: "workspaceId", value: made[1]!.id } });
  t.deepEqual(one.workspaces, [made[1]]);
  for (const value of [randomUUID(), "junk"]) {
    const error = await t.throwsAsync(identity.listDaemonWorkspaces({ caller: { $case: "workspaceId", value } }));
    t.like(error as object, { code: status.NOT_FOUND, details: "workspace not found" });
  }
  const nobody = await t.throwsAsync(identity.listDaemonWorkspaces({ caller: undefined }));
  t.like(nobody as object, { code: status.INVALID_ARGUMENT });
});

const profile = (id: string, extra: Partial<User> = {}): User => ({
  id,
  name: "Ada",
  email: "ada@example.com",
  onboardingQuestionnaireJson: "",
  profileDescription: "",
  recorded: false,
  ...extra,
});

test("GetUser: the recorded user, else the credential's id and email claim; NOT_FOUND only for a non-UUID id", async (t) => {
  const unknown = randomUUID();
  const bare = (await identity.getUser({ userId: unknown.toUpperCase(), emailClaim: "who@example.com" })).user!;
  t.like(bare, { id: unknown, name: "", email: "who@example.com", onboardingQuestionnaireJson: "{}", profileDescription: "", recorded: false });
  for (const unset of ["avatarUrl", "language", "timezone", "onboardedAt", "starterContentState", "createdAt", "updatedAt"] as const) {
    t.is(bare[unset], undefined, unset);
  }
  t.is((await identity.getUser({ userId: unknown })).user!.email, "", "no claim, no email");
  const junk = await t.throwsAsync(identity.getUser({ userId: "not-a-uuid" }));
  t.like(junk as object, { code: status.NOT_FOUND, details: "user not found" });

  const id = randomUUID();
  const onboarded = new Date("2026-01-02T03:04:05Z");
  const recorded = (
    await identity.recordUser({
      user: profile(id, { language: "en", timezone: "Europe/Paris", onboardedAt: onboarded, onboardingQuestionnaireJson: '{"role": "dev"}' }),
    })
  ).user!;
  t.like(recorded, { id, name: "Ada", language: "en", timezone: "Europe/Paris", onboardingQuestionnaireJson: '{"role": "dev"}', recorded: true });
  t.deepEqual(recorded.onboardedAt, onboarded);
  const read = (await identity.getUser({ userId: id, emailClaim: "claim@example.com" })).user!;
  t.is(read.email, "ada@example.com", "the product's record wins over the claim");
  t.deepEqual(read, recorded);

  // A second record replaces every field, but keeps created_at when none is given.
  const again = (await identity.recordUser({ user: profile(id, { name: "Ada L." }) })).user!;
  t.like(again, { name: "Ada L.", language: undefined, onboardingQuestionnaireJson: "{}" });
  t.deepEqual(again.createdAt, recorded.createdAt);
});

test("RecordUser refuses what it cannot store", async (t) => {
  const cases: Array<[User | undefined, string]> = [
    [undefined, "user is required"],
    [profile("junk"), "invalid user id"],
    [profile(randomUUID(), { name: "x".repeat(256) }), "name: too long (at most 255 characters)"],
    [profile(randomUUID(), { email: "a\u0000b" }), "email: contains a NUL character"],
    [profile(randomUUID(), { onboardingQuestionnaireJson: "[1]" }), "onboarding_questionnaire must be a JSON object"],
    [profile(randomUUID(), { onboardingQuestionnaireJson: "{" }), "onboarding_questionnaire must be a JSON object"],
  ];
  for (const [user, message] of cases) {
    const error = await t.throwsAsync(identity.recordUser({ user }));
    t.like(error as object, { code: status.INVALID_ARGUMENT, details: message }, message);
  }
});
