import test from "ava";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const families = "claude, codebuddy, codex, copilot, opencode, openclaw, hermes, gemini, pi, cursor, kimi, kiro, antigravity";

const valid = { display_name: "Fast Claude", protocol_family: "claude", command_name: "claude-fast" };

function base(ws: SeededWorkspace) {
  return `/api/workspaces/${ws.workspaceId}/runtime-profiles`;
}

async function create(ws: SeededWorkspace, body: unknown, token = ws.admin.pat) {
  return http(stack.gatewayUrl, "POST", base(ws), { token, body });
}

test("a full round trip: create over HTTP, list, read, update, then delete", async (t) => {
  const ws = await seedWorkspace(stack);
  const created = await create(ws, { ...valid, description: "d", fixed_args: [" --fast "], visibility: " private ", enabled: false });
  t.is(created.status, 201);
  t.is(created.contentType, "application/json");
  t.true(created.text.endsWith("}\n"), "Go-encoded bodies end with a newline");
  const profile = created.json as Record<string, unknown>;
  t.like(profile, {
    workspace_id: ws.workspaceId,
    display_name: "Fast Claude",
    protocol_family: "claude",
    command_name: "claude-fast",
    description: "d",
    fixed_args: [" --fast "],
    visibility: "private",
    created_by: ws.admin.userId,
    enabled: false,
  });
  t.regex(profile.created_at as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.deepEqual(Object.keys(profile), [
    "id",
    "workspace_id",
    "display_name",
    "protocol_family",
    "command_name",
    "description",
    "fixed_args",
    "visibility",
    "created_by",
    "enabled",
    "created_at",
    "updated_at",
  ]);

  const list = await http(stack.gatewayUrl, "GET", base(ws), { token: ws.member.jwt });
  t.is(list.status, 200);
  t.deepEqual(list.json, { runtime_profiles: [profile] });

  const one = await http(stack.gatewayUrl, "GET", `${base(ws)}/${profile.id}`, { token: ws.member.pat });
  t.deepEqual(one.json, profile);

  const patched = await http(stack.gatewayUrl, "PATCH", `${base(ws)}/${profile.id}`, {
    token: ws.owner.jwt,
    body: { command_name: "  other ", enabled: true, protocol_family: "codex", description: null },
  });
  t.is(patched.status, 200);
  t.like(patched.json as object, { command_name: "other", enabled: true, protocol_family: "claude", description: "d" });

  const put = await http(stack.gatewayUrl, "PUT", `${base(ws)}/${profile.id}`, { token: ws.owner.jwt, body: { description: "" } });
  t.is(put.status, 200);
  t.like(put.json as object, { description: "", command_name: "other" });

  const deleted = await http(stack.gatewayUrl, "DELETE", `${base(ws)}/${profile.id}`, { token: ws.admin.pat });
  t.is(deleted.status, 204);
  t.is(deleted.text, "");
  const gone = await http(stack.gatewayUrl, "GET", `${base(ws)}/${profile.id}`, { token: ws.member.pat });
  t.is(gone.status, 404);
  t.is(gone.text, '{"error":"runtime profile not found"}\n');
});

const createErrors: Array<[string, unknown, number, string]> = [
  ["blank display_name", { ...valid, display_name: "  " }, 400, "display_name is required"],
  ["missing display_name", { protocol_family: "claude", command_name: "c" }, 400, "display_name is required"],
  ["unknown family", { ...valid, protocol_family: "vim" }, 400, `unsupported protocol_family: must be one of ${families}`],
  ["family checked before command", { display_name: "x", protocol_family: "" }, 400, `unsupported protocol_family: must be one of ${families}`],
  ["blank command_name", { ...valid, command_name: " " }, 400, "command_name is required"],
  ["bad visibility", { ...valid, visibility: "public" }, 400, "visibility must be 'workspace' or 'private'"],
  ["blank fixed arg", { ...valid, fixed_args: ["--ok", "  "] }, 400, "fixed_args entries must be non-empty"],
  ["wrong field type", { ...valid, enabled: "yes" }, 400, "invalid request body"],
  ["array body", [valid], 400, "invalid request body"],
];

for (const [name, body, status, message] of createErrors) {
  test(`create rejects ${name} with ${status} "${message}"`, async (t) => {
    const ws = await seedWorkspace(stack);
    const answer = await create(ws, body);
    t.is(answer.status, status);
    t.is(answer.text, `${JSON.stringify({ error: message })}\n`);
    const list = await http(stack.gatewayUrl, "GET", base(ws), { token: ws.admin.pat });
    t.deepEqual(list.json, { runtime_profiles: [] }, "nothing was written");
  });
}

test("create: malformed and empty bodies answer 400 invalid request body", async (t) => {
  const ws = await seedWorkspace(stack);
  for (const rawBody of ["{", "", "   ", '{"display_name": 5}']) {
    const answer = await http(stack.gatewayUrl, "POST", base(ws), { token: ws.admin.pat, rawBody });
    t.is(answer.status, 400, `body ${JSON.stringify(rawBody)}`);
    t.is(answer.text, '{"error":"invalid request body"}\n');
  }
});

test("create: visibility defaults to workspace, fixed_args to [], enabled to true, null description is null", async (t) => {
  const ws = await seedWorkspace(stack);
  const answer = await create(ws, { ...valid, description: null, fixed_args: null });
  t.is(answer.status, 201);
  t.like(answer.json as object, { visibility: "workspace", fixed_args: [], enabled: true, description: null });
});

test("update errors keep the stored row unchanged", async (t) => {
  const ws = await seedWorkspace(stack);
  const created = (await create(ws, valid)).json as { id: string };
  const path = `${base(ws)}/${created.id}`;
  const cases: Array<[unknown, number, string]> = [
    [{ display_name: " " }, 400, "display_name cannot be empty"],
    [{ command_name: "" }, 400, "command_name cannot be empty"],
    [{ visibility: "" }, 400, "visibility must be 'workspace' or 'private'"],
    [{ fixed_args: [""] }, 400, "fixed_args entries must be non-empty"],
    [{ enabled: 1 }, 400, "invalid request body"],
  ];
  for (const [body, status, message] of cases) {
    const answer = await http(stack.gatewayUrl, "PATCH", path, { token: ws.admin.pat, body });
    t.is(answer.status, status);
    t.deepEqual(answer.json, { error: message });
  }
  const unchanged = await http(stack.gatewayUrl, "GET", path, { token: ws.admin.pat });
  t.like(unchanged.json as object, { display_name: valid.display_name, command_name: valid.command_name, visibility: "workspace" });
});

test("update and delete of an unknown or malformed profile id", async (t) => {
  const ws = await seedWorkspace(stack);
  const unknown = `${base(ws)}/00000000-0000-0000-0000-000000000000`;
  t.deepEqual((await http(stack.gatewayUrl, "PATCH", unknown, { token: ws.admin.pat, body: {} })).json, {
    error: "runtime profile not found",
  });
  t.is((await http(stack.gatewayUrl, "DELETE", unknown, { token: ws.admin.pat })).status, 404);
  const bad = await http(stack.gatewayUrl, "GET", `${base(ws)}/not-a-uuid`, { token: ws.admin.pat });
  t.is(bad.status, 400);
  t.deepEqual(bad.json, { error: "invalid profile id" });
});

test("two concurrent creates of one display name: exactly one 201, the other 409", async (t) => {
  const ws = await seedWorkspace(stack);
  const answers = await Promise.all([create(ws, valid), create(ws, { ...valid, command_name: "other" })]);
  t.deepEqual(answers.map((a) => a.status).sort(), [201, 409]);
  const conflict = answers.find((a) => a.status === 409)!;
  t.is(conflict.text, '{"error":"a runtime profile with this display_name already exists"}\n');
  const list = await http(stack.gatewayUrl, "GET", base(ws), { token: ws.admin.pat });
  t.is((list.json as { runtime_profiles: unknown[] }).runtime_profiles.length, 1);
});

test("renaming onto an existing display name answers 409", async (t) => {
  const ws = await seedWorkspace(stack);
  await create(ws, valid);
  const second = (await create(ws, { ...valid, display_name: "Second" })).json as { id: string };
  const answer = await http(stack.gatewayUrl, "PATCH", `${base(ws)}/${second.id}`, {
    token: ws.admin.pat,
    body: { display_name: valid.display_name },
  });
  t.is(answer.status, 409);
});

test("the same display name may exist in two workspaces", async (t) => {
  const a = await seedWorkspace(stack);
  const b = await seedWorkspace(stack);
  t.is((await create(a, valid)).status, 201);
  t.is((await create(b, valid)).status, 201);
});

test("a plain member reads but cannot write (403 insufficient permissions)", async (t) => {
  const ws = await seedWorkspace(stack);
  const created = (await create(ws, valid)).json as { id: string };
  const attempts = [
    await create(ws, { ...valid, display_name: "by member" }, ws.member.pat),
    await http(stack.gatewayUrl, "PATCH", `${base(ws)}/${created.id}`, { token: ws.member.jwt, body: { enabled: false } }),
    await http(stack.gatewayUrl, "DELETE", `${base(ws)}/${created.id}`, { token: ws.member.pat }),
  ];
  for (const answer of attempts) {
    t.is(answer.status, 403);
    t.is(answer.text, '{"error":"insufficient permissions"}', "middleware errors have no trailing newline");
  }
  const list = await http(stack.gatewayUrl, "GET", base(ws), { token: ws.member.pat });
  t.like((list.json as { runtime_profiles: object[] }).runtime_profiles, [{ enabled: true }]);
  t.is((list.json as { runtime_profiles: object[] }).runtime_profiles.length, 1);
});

test("cross-workspace reads answer 404, as if the profile did not exist", async (t) => {
  const a = await seedWorkspace(stack);
  const b = await seedWorkspace(stack);
  const profile = (await create(a, valid)).json as { id: string };
  // A member of B asking through B's path for A's profile: not found.
  const viaOwnWorkspace = await http(stack.gatewayUrl, "GET", `${base(b)}/${profile.id}`, { token: b.admin.pat });
  t.is(viaOwnWorkspace.status, 404);
  t.deepEqual(viaOwnWorkspace.json, { error: "runtime profile not found" });
  // A member of B asking through A's path: not a member there.
  const viaForeignWorkspace = await http(stack.gatewayUrl, "GET", `${base(a)}/${profile.id}`, { token: b.admin.pat });
  t.is(viaForeignWorkspace.status, 404);
  t.is(viaForeignWorkspace.text, '{"error":"workspace not found"}');
  const deleteForeign = await http(stack.gatewayUrl, "DELETE", `${base(b)}/${profile.id}`, { token: b.owner.pat });
  t.is(deleteForeign.status, 404);
  t.is((await http(stack.gatewayUrl, "GET", `${base(a)}/${profile.id}`, { token: a.member.pat })).status, 200, "still there");
});

test("user routes: malformed workspace id is 400, no token is a text/plain 401", async (t) => {
  const ws = await seedWorkspace(stack);
  const bad = await http(stack.gatewayUrl, "GET", "/api/workspaces/nope/runtime-profiles", { token: ws.member.pat });
  t.is(bad.status, 400);
  t.is(bad.text, '{"error":"invalid workspace_id"}');
  const anonymous = await http(stack.gatewayUrl, "GET", base(ws));
  t.is(anonymous.status, 401);
  t.is(anonymous.contentType, "text/plain; charset=utf-8");
  t.is(anonymous.headers.get("x-content-type-options"), "nosniff");
  t.is(anonymous.text, '{"error":"missing authorization"}\n');
});

test("daemon list (D6) shows enabled profiles only, oldest first, with the path's workspace id", async (t) => {
  const ws = await seedWorkspace(stack);
  const first = (await create(ws, { ...valid, display_name: "first" })).json as { id: string };
  await create(ws, { ...valid, display_name: "disabled", enabled: false });
  const third = (await create(ws, { ...valid, display_name: "third" })).json as { id: string };
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d1", ttlSeconds: 0 });
  const answer = await http(stack.gatewayUrl, "GET", `/api/daemon/workspaces/${ws.workspaceId}/runtime-profiles`, { token });
  t.is(answer.status, 200);
  const body = answer.json as { workspace_id: string; runtime_profiles: Array<{ id: string }> };
  t.is(body.workspace_id, ws.workspaceId);
  t.deepEqual(
    body.runtime_profiles.map((p) => p.id),
    [first.id, third.id],
  );
});

test("a daemon token of workspace A cannot list workspace B's profiles", async (t) => {
  const a = await seedWorkspace(stack);
  const b = await seedWorkspace(stack);
  await create(b, valid);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: a.workspaceId, daemonId: "d1", ttlSeconds: 0 });
  const answer = await http(stack.gatewayUrl, "GET", `/api/daemon/workspaces/${b.workspaceId}/runtime-profiles`, { token });
  t.is(answer.status, 404);
  t.is(answer.text, '{"error":"not found"}\n');
  const pat = await http(stack.gatewayUrl, "GET", `/api/daemon/workspaces/${b.workspaceId}/runtime-profiles`, { token: a.member.pat });
  t.is(pat.status, 404, "a user who is not a member gets the same answer");
});

test("a daemon token cannot use the user routes", async (t) => {
  const ws = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d1", ttlSeconds: 0 });
  const answer = await http(stack.gatewayUrl, "POST", base(ws), { token, body: valid });
  t.is(answer.status, 401);
  t.is(answer.text, '{"error":"invalid token"}\n');
});
