import { randomUUID } from "node:crypto";
import test from "ava";
import { query, waitFor } from "@controlplane/testkit";
import { MemberRole } from "@controlplane/proto/registry/v1/identity";
import { golden, normalize } from "../support/golden.js";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const register = (token: string, body: unknown) => http(stack.gatewayUrl, "POST", "/api/daemon/register", { token, body });
const deregister = (token: string, body: unknown) => http(stack.gatewayUrl, "POST", "/api/daemon/deregister", { token, body });

function registration(ws: SeededWorkspace, extra: Record<string, unknown> = {}) {
  return {
    workspace_id: ws.workspaceId,
    daemon_id: "daemon-uuid-1",
    device_name: " MacBook ",
    cli_version: "0.9.1",
    launched_by: "desktop",
    runtimes: [{ name: "", type: "claude", version: "2.1.0", status: "online" }],
    ...extra,
  };
}

async function createProfile(ws: SeededWorkspace, body: Record<string, unknown>) {
  const answer = await http(stack.gatewayUrl, "POST", `/api/workspaces/${ws.workspaceId}/runtime-profiles`, {
    token: ws.admin.pat,
    body: { protocol_family: "codex", command_name: "codex-wrapper", ...body },
  });
  return (answer.json as { id: string }).id;
}

type RuntimeJson = { id: string; provider: string; profile_id: string | null; name: string; status: string; owner_id: string | null };
const runtimesOf = (answer: { json: unknown }) => (answer.json as { runtimes: RuntimeJson[] }).runtimes;

async function runtimeRows(workspaceId: string) {
  return query<{ id: string; daemon_id: string; provider: string; profile_id: string | null; legacy_daemon_id: string | null }>(
    stack.db.url,
    "SELECT id, daemon_id, provider, profile_id, legacy_daemon_id FROM registry.agent_runtime WHERE workspace_id = $1 ORDER BY created_at, id",
    [workspaceId],
  );
}

test("register answers the contract's JSON byte for byte (golden)", async (t) => {
  const ws = await seedWorkspace(stack);
  await stack.identity.updateWorkspace({
    workspaceId: ws.workspaceId,
    repos: {
      repos: [
        { url: " https://github.com/acme/app ", description: "main app" },
        { url: "https://github.com/acme/lib", description: "" },
      ],
    },
    settingsJson: '{"theme": "dark"}',
  });
  const answer = await register(
    ws.member.pat,
    registration(ws, {
      runtimes: [
        { name: "", type: "claude", version: "2.1.0", status: "online" },
        { name: "  My Codex  ", type: "codex", version: "", status: "offline" },
        { name: "", type: "", version: "1.0", status: "" },
      ],
    }),
  );
  t.is(answer.status, 200);
  t.is(answer.contentType, "application/json");
  const body = normalize(answer.text, { workspace: ws.workspaceId, owner: ws.member.userId });
  t.is(body, golden(new URL("golden/register.json", import.meta.url), body));
});

test('deregister answers {"status":"ok"} and marks runtimes offline', async (t) => {
  const ws = await seedWorkspace(stack);
  const [runtime] = runtimesOf(await register(ws.member.pat, registration(ws)));
  const answer = await deregister(ws.member.pat, { runtime_ids: [runtime!.id] });
  t.is(answer.status, 200);
  t.is(answer.text, '{"status":"ok"}\n');
  const { runtime: stored } = await stack.registry.getRuntime({ runtimeId: runtime!.id });
  t.is(stored!.status, "offline");
});

const registerErrors: Array<[string, (ws: SeededWorkspace) => unknown, number, string]> = [
  ["no daemon_id", (ws) => registration(ws, { daemon_id: "  " }), 400, "daemon_id is required"],
  ["no workspace_id", (ws) => registration(ws, { workspace_id: "", daemon_id: "" }), 400, "daemon_id is required"],
  ["blank workspace_id", (ws) => registration(ws, { workspace_id: " " }), 400, "workspace_id is required"],
  ["no runtimes", (ws) => registration(ws, { runtimes: [] }), 400, "at least one runtime is required"],
  ["null runtimes", (ws) => registration(ws, { runtimes: null }), 400, "at least one runtime is required"],
  ["malformed workspace_id", (ws) => registration(ws, { workspace_id: "nope" }), 400, "invalid workspace_id"],
  ["unknown workspace", (ws) => registration(ws, { workspace_id: randomUUID() }), 404, "workspace not found"],
  ["malformed profile_id", (ws) => registration(ws, { runtimes: [{ type: "x", profile_id: "p-1" }] }), 400, "invalid profile_id"],
  ["wrong field type", (ws) => registration(ws, { runtimes: "claude" }), 400, "invalid request body"],
];

for (const [name, body, status, message] of registerErrors) {
  test(`register refuses ${name}: ${status} ${message}`, async (t) => {
    const ws = await seedWorkspace(stack);
    const answer = await register(ws.member.pat, body(ws));
    t.is(answer.status, status);
    t.is(answer.text, `${JSON.stringify({ error: message })}\n`);
    t.deepEqual(await runtimeRows(ws.workspaceId), [], "nothing written");
  });
}

test("a user who is not a member, or a daemon token of another workspace, gets 404 workspace not found", async (t) => {
  const a = await seedWorkspace(stack);
  const b = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: a.workspaceId, daemonId: "d", ttlSeconds: 0 });
  for (const credential of [token, a.member.pat]) {
    const answer = await register(credential, registration(b));
    t.is(answer.status, 404);
    t.is(answer.text, '{"error":"workspace not found"}\n');
  }
  t.deepEqual(await runtimeRows(b.workspaceId), []);
});

test("a daemon token registers without an owner; a member's credential sets and keeps the owner", async (t) => {
  const ws = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 0 });
  const viaToken = runtimesOf(await register(token, registration(ws)));
  t.is(viaToken[0]!.owner_id, null);
  const viaUser = runtimesOf(await register(ws.owner.jwt, registration(ws)));
  t.is(viaUser[0]!.id, viaToken[0]!.id);
  t.is(viaUser[0]!.owner_id, ws.owner.userId);
  const again = runtimesOf(await register(token, registration(ws)));
  t.is(again[0]!.owner_id, ws.owner.userId, "a token register never clears the owner");
});

test("a built-in runtime and custom runtimes of the same family coexist on one daemon", async (t) => {
  const ws = await seedWorkspace(stack);
  const fast = await createProfile(ws, { display_name: "Codex fast" });
  const safe = await createProfile(ws, { display_name: "Codex safe" });
  const answer = await register(
    ws.member.pat,
    registration(ws, {
      runtimes: [
        { name: "Codex", type: "codex", version: "1", status: "online" },
        { name: "Codex fast (mac)", type: "claude", version: "1", status: "online", profile_id: fast },
        { name: "Codex safe (mac)", type: "codex", version: "1", status: "online", profile_id: safe.toUpperCase() },
      ],
    }),
  );
  t.is(answer.status, 200);
  const runtimes = runtimesOf(answer);
  t.deepEqual(
    runtimes.map((r) => [r.provider, r.profile_id]),
    [
      ["codex", null],
      ["codex", fast],
      ["codex", safe],
    ],
  );
  t.is(new Set(runtimes.map((r) => r.id)).size, 3);
});

test("custom runtime: unknown, other-workspace and disabled profiles are refused and nothing is written", async (t) => {
  const ws = await seedWorkspace(stack);
  const other = await seedWorkspace(stack);
  const foreign = await createProfile(other, { display_name: "theirs" });
  const disabled = await createProfile(ws, { display_name: "off", enabled: false });
  const unknown = randomUUID().toUpperCase();
  const cases: Array<[string, number, string]> = [
    [unknown, 400, `unknown runtime profile: ${unknown}`],
    [foreign, 400, `unknown runtime profile: ${foreign}`],
    [disabled, 409, `runtime profile is disabled: ${disabled}`],
  ];
  for (const [profileId, status, message] of cases) {
    const answer = await register(
      ws.member.pat,
      registration(ws, {
        runtimes: [
          { name: "", type: "claude", version: "1", status: "online" },
          { name: "", type: "codex", version: "1", status: "online", profile_id: profileId },
        ],
      }),
    );
    t.is(answer.status, status);
    t.deepEqual(answer.json, { error: message });
  }
  t.deepEqual(await runtimeRows(ws.workspaceId), [], "the valid first runtime was not written either");
});

test("re-registering is idempotent: same rows, inserted only once, one runtime.registered", async (t) => {
  const ws = await seedWorkspace(stack);
  const first = runtimesOf(await register(ws.member.pat, registration(ws)));
  const second = runtimesOf(await register(ws.member.pat, registration(ws, { device_name: "Renamed" })));
  t.is(second[0]!.id, first[0]!.id);
  t.is(second[0]!.name, "claude (Renamed)");
  t.is((await runtimeRows(ws.workspaceId)).length, 1);
  const daemonEvents = await waitFor("two daemon.registered events", async () => {
    const all = (await stack.events.read("daemon.registered")).filter((e) => e.event.meta!.workspaceId === ws.workspaceId);
    return all.length === 2 ? all : undefined;
  });
  t.is(daemonEvents.length, 2);
  const registered = (await stack.events.read("runtime.registered")).filter((e) => e.event.meta!.workspaceId === ws.workspaceId);
  t.deepEqual(
    registered.map((e) => e.event.runtime!.id),
    [first[0]!.id],
  );
});

test("8 concurrent registers of the same daemon make one row per runtime", async (t) => {
  const ws = await seedWorkspace(stack);
  const profile = await createProfile(ws, { display_name: "custom" });
  const body = registration(ws, {
    runtimes: [
      { name: "", type: "claude", version: "1", status: "online" },
      { name: "", type: "codex", version: "1", status: "online", profile_id: profile },
    ],
  });
  const answers = await Promise.all(Array.from({ length: 8 }, () => register(ws.member.pat, body)));
  t.deepEqual(
    answers.map((a) => a.status),
    Array(8).fill(200),
  );
  t.is(
    new Set(
      answers.map((a) =>
        runtimesOf(a)
          .map((r) => r.id)
          .join(),
      ),
    ).size,
    1,
    "every answer names the same rows",
  );
  t.is((await runtimeRows(ws.workspaceId)).length, 2);
  await waitFor(
    "8 daemon.registered events",
    async () => (await stack.events.read("daemon.registered")).filter((e) => e.event.meta!.workspaceId === ws.workspaceId).length === 8,
  );
  const registered = (await stack.events.read("runtime.registered")).filter((e) => e.event.meta!.workspaceId === ws.workspaceId);
  t.is(registered.length, 2, "runtime.registered exactly once per row");
});

test("legacy merge folds every case-insensitive match into the new runtime, moving agents", async (t) => {
  const ws = await seedWorkspace(stack);
  // Rows an old daemon created under hostname-derived ids, including a case duplicate.
  const oldUpper = runtimesOf(await register(ws.member.pat, registration(ws, { daemon_id: "Host.local" })))[0]!;
  const oldLower = runtimesOf(await register(ws.member.pat, registration(ws, { daemon_id: "host.local" })))[0]!;
  const oldBare = runtimesOf(await register(ws.member.pat, registration(ws, { daemon_id: "host" })))[0]!;
  const otherProvider = runtimesOf(
    await register(
      ws.member.pat,
      registration(ws, {
        daemon_id: "host",
        runtimes: [{ type: "codex", version: "1", status: "online" }],
      }),
    ),
  )[0]!;
  const agent = (
    await stack.registry.upsertAgent({
      workspaceId: ws.workspaceId,
      runtimeId: oldLower.id,
      name: "helper",
      instructions: "",
      customEnv: {},
      customArgs: [],
      runtimeConfigJson: "",
      skills: [],
      maxConcurrentTasks: 0,
      visibility: "",
    })
  ).agent!;

  const answer = await register(
    ws.member.pat,
    registration(ws, {
      daemon_id: "3f1c-new-uuid",
      legacy_daemon_ids: ["HOST.LOCAL", " host ", "", "host.local"],
    }),
  );
  const [merged] = runtimesOf(answer);
  t.is(answer.status, 200);
  const rows = await runtimeRows(ws.workspaceId);
  t.deepEqual(rows.map((r) => r.id).sort(), [merged!.id, otherProvider.id].sort(), "all three claude rows folded, codex kept");
  t.is(rows.find((r) => r.id === merged!.id)!.legacy_daemon_id, "HOST.LOCAL", "the first merged id, as sent");
  t.is((await stack.registry.getAgent({ agentId: agent.id })).agent!.runtimeId, merged!.id);
  const events = await waitFor("three runtime.merged events", async () => {
    const all = (await stack.events.read("runtime.merged")).filter((e) => e.event.meta!.workspaceId === ws.workspaceId);
    return all.length === 3 ? all : undefined;
  });
  t.deepEqual(events.map((e) => e.event.fromRuntimeId).sort(), [oldUpper.id, oldLower.id, oldBare.id].sort());
  t.true(events.every((e) => e.event.toRuntimeId === merged!.id));
});

test("custom runtimes are never merged, in either direction", async (t) => {
  const ws = await seedWorkspace(stack);
  const profile = await createProfile(ws, { display_name: "codex custom" });
  const oldCustom = runtimesOf(
    await register(
      ws.member.pat,
      registration(ws, {
        daemon_id: "oldhost",
        runtimes: [{ type: "codex", version: "1", status: "online", profile_id: profile }],
      }),
    ),
  )[0]!;
  const oldBuiltIn = runtimesOf(
    await register(
      ws.member.pat,
      registration(ws, {
        daemon_id: "oldhost",
        runtimes: [{ type: "codex", version: "1", status: "online" }],
      }),
    ),
  )[0]!;
  const answer = await register(
    ws.member.pat,
    registration(ws, {
      daemon_id: "new-daemon",
      legacy_daemon_ids: ["oldhost"],
      runtimes: [
        { type: "codex", version: "1", status: "online" },
        { type: "codex", version: "1", status: "online", profile_id: profile },
      ],
    }),
  );
  const [builtIn, custom] = runtimesOf(answer);
  const ids = (await runtimeRows(ws.workspaceId)).map((r) => r.id);
  t.true(ids.includes(oldCustom.id), "the old custom row is not folded into the new built-in");
  t.false(ids.includes(oldBuiltIn.id), "the old built-in row is folded");
  t.true(ids.includes(custom!.id) && ids.includes(builtIn!.id));
  t.is(ids.length, 3);
});

test("deregister: ids validated first, foreign and unknown ids skipped, one runtime.offline per flip", async (t) => {
  const a = await seedWorkspace(stack);
  const b = await seedWorkspace(stack);
  const mine = runtimesOf(await register(a.member.pat, registration(a)))[0]!;
  const theirs = runtimesOf(await register(b.member.pat, registration(b)))[0]!;

  t.deepEqual((await deregister(a.member.pat, { runtime_ids: [] })).json, { error: "runtime_ids is required" });
  t.deepEqual((await deregister(a.member.pat, {})).json, { error: "runtime_ids is required" });
  const invalid = await deregister(a.member.pat, { runtime_ids: [mine.id, "nope"] });
  t.is(invalid.status, 400);
  t.deepEqual(invalid.json, { error: "invalid runtime_ids" });
  t.is((await stack.registry.getRuntime({ runtimeId: mine.id })).runtime!.status, "online", "nothing changed on 400");

  const { token } = await stack.identity.issueDaemonToken({ workspaceId: a.workspaceId, daemonId: "d", ttlSeconds: 0 });
  const ok = await deregister(token, { runtime_ids: [mine.id, theirs.id, randomUUID()] });
  t.is(ok.text, '{"status":"ok"}\n');
  t.is((await stack.registry.getRuntime({ runtimeId: mine.id })).runtime!.status, "offline");
  t.is((await stack.registry.getRuntime({ runtimeId: theirs.id })).runtime!.status, "online", "foreign runtime untouched");
  await deregister(token, { runtime_ids: [mine.id] });
  const offline = await waitFor("runtime.offline", async () => {
    const all = (await stack.events.read("runtime.offline")).filter((e) => e.event.runtimeId === mine.id);
    return all.length > 0 ? all : undefined;
  });
  // A marker proves the relay has passed the second deregister.
  await register(a.member.pat, registration(a, { daemon_id: "marker" }));
  await waitFor("the marker", async () => (await stack.events.read("daemon.registered")).some((e) => e.event.daemonId === "marker"));
  t.is((await stack.events.read("runtime.offline")).filter((e) => e.event.runtimeId === mine.id).length, 1);
  t.is(offline[0]!.event.reason, 1, "reason: deregister");
});

test("a member of another workspace can deregister nothing there", async (t) => {
  const a = await seedWorkspace(stack);
  const b = await seedWorkspace(stack);
  const theirs = runtimesOf(await register(b.member.pat, registration(b)))[0]!;
  await stack.identity.addMember({ workspaceId: a.workspaceId, userId: randomUUID(), role: MemberRole.MEMBER_ROLE_MEMBER });
  t.is((await deregister(a.member.jwt, { runtime_ids: [theirs.id] })).status, 200);
  t.is((await stack.registry.getRuntime({ runtimeId: theirs.id })).runtime!.status, "online");
});
