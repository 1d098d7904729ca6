import { randomUUID } from "node:crypto";
import test from "ava";
import { SignJWT } from "jose";
import { golden, normalize } from "../support/golden.js";
import { http } from "../support/http.js";
import { JWT_SECRET, seedWorkspace, signJwt, startStack, type Stack } from "../support/stack.js";

// The routes a daemon host's CLI needs (§13.11): `multica login` (POST
// /api/tokens, then GET /api/me), `auth status` and the `daemon restart`
// preflight (GET /api/me), `runtime list` (GET /api/runtimes) and `repo …`
// (GET /api/workspaces/{id}). Exact bytes.

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const goldenFile = (name: string) => new URL(`golden/${name}`, import.meta.url);
const get = (path: string, token?: string, headers: Record<string, string> = {}) => http(stack.gatewayUrl, "GET", path, { token, headers });
const createToken = (token: string, body: unknown) => http(stack.gatewayUrl, "POST", "/api/tokens", { token, body });

/** A session JWT as the product signs it, with an email claim. */
const jwtWithEmail = (userId: string, email: string) =>
  new SignJWT({ email })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(JWT_SECRET));

test("GET /api/me answers the user the product recorded (golden)", async (t) => {
  const userId = randomUUID();
  await stack.identity.recordUser({
    user: {
      id: userId,
      name: "Ada <Lovelace>",
      email: "ada@example.com",
      avatarUrl: "https://cdn.example.com/ada.png",
      language: "en",
      onboardedAt: new Date("2026-03-04T05:06:07Z"),
      onboardingQuestionnaireJson: '{"role": "engineer", "team_size": 3}',
      profileDescription: "Writes the engines.",
      recorded: false,
    },
  });
  const answer = await get("/api/me", await signJwt(userId));
  t.is(answer.status, 200);
  t.is(answer.contentType, "application/json");
  const body = normalize(answer.text, { user: userId });
  t.is(body, golden(goldenFile("me.json"), body));
});

test("GET /api/me for a user the product never recorded: the id, a JWT's email claim, everything else empty", async (t) => {
  const userId = randomUUID();
  const viaJwt = await get("/api/me", await jwtWithEmail(userId, "new@example.com"));
  t.is(viaJwt.status, 200);
  t.is(
    viaJwt.text,
    `{"id":"${userId}","name":"","email":"new@example.com","avatar_url":null,"language":null,"timezone":null,"onboarded_at":null,` +
      `"onboarding_questionnaire":{},"starter_content_state":null,"profile_description":"","created_at":"","updated_at":""}\n`,
  );
  const { token: pat } = await stack.identity.issuePersonalAccessToken({ userId, name: "cli", ttlSeconds: 3600 });
  t.like((await get("/api/me", pat)).json as object, { id: userId, email: "" }, "a PAT carries no email");
});

test("GET /api/me: 404 user not found for a user id that is not a UUID; the Auth middleware's 401s", async (t) => {
  const notAUuid = await get("/api/me", await signJwt("not-a-uuid"));
  t.is(notAUuid.status, 404);
  t.is(notAUuid.text, '{"error":"user not found"}\n');
  const anonymous = await get("/api/me");
  t.is(anonymous.status, 401);
  t.is(anonymous.contentType, "text/plain; charset=utf-8");
  t.is(anonymous.text, '{"error":"missing authorization"}\n');
  const ws = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 0 });
  t.is((await get("/api/me", token)).text, '{"error":"invalid token"}\n', "a daemon token is no user credential");
});

test("multica login: POST /api/tokens mints a PAT for the JWT's user (201, golden), and GET /api/me works with it", async (t) => {
  const userId = randomUUID();
  const before = Date.now();
  const answer = await createToken(await jwtWithEmail(userId, "cli@example.com"), { name: "CLI (ada-mbp)", expires_in_days: 90 });
  t.is(answer.status, 201);
  t.is(answer.contentType, "application/json");
  const created = answer.json as { id: string; token: string; token_prefix: string; expires_at: string };
  t.regex(created.token, /^mul_[0-9a-f]{40}$/);
  t.is(created.token_prefix, created.token.slice(0, 12));
  const expiry = Date.parse(created.expires_at);
  t.true(Math.abs(expiry - (before + 90 * 86_400_000)) < 60_000, "now + 90 days");
  const body = normalize(answer.text.replace(created.token, "<token>").replace(`"${created.token_prefix}"`, '"<prefix>"'));
  t.is(body, golden(goldenFile("tokens-create.json"), body));

  const me = await get("/api/me", created.token);
  t.is(me.status, 200);
  t.like(me.json as object, { id: userId });
  const { tokens } = await stack.identity.listTokens({ userId });
  t.deepEqual(
    tokens.map((tk) => [tk.id, tk.name]),
    [[created.id, "CLI (ada-mbp)"]],
  );
});

test("POST /api/tokens: no expiry unless expires_in_days > 0; the name is required and kept as sent", async (t) => {
  const jwt = await signJwt(randomUUID());
  for (const extra of [{}, { expires_in_days: null }, { expires_in_days: 0 }, { expires_in_days: -3 }]) {
    const answer = await createToken(jwt, { name: "n", ...extra });
    t.is(answer.status, 201, JSON.stringify(extra));
    t.is((answer.json as { expires_at: unknown }).expires_at, null, JSON.stringify(extra));
  }
  const spaced = await createToken(jwt, { name: " spaced " });
  t.is((spaced.json as { name: string }).name, " spaced ", "stored and answered untrimmed, as the original did");
  const refusals: Array<[unknown, string]> = [
    [{}, "name is required"],
    [{ name: "" }, "name is required"],
    [{ name: "n", expires_in_days: 1.5 }, "invalid request body"],
    [{ name: "n", expires_in_days: "90" }, "invalid request body"],
    [{ name: "n", expires_in_days: 36_501 }, "expires_in_days: out of range"],
    [{ name: "x".repeat(256) }, "name: too long (at most 255 characters)"],
  ];
  for (const [body, message] of refusals) {
    const answer = await createToken(jwt, body);
    t.is(answer.status, 400, JSON.stringify(body));
    t.is(answer.text, `{"error":"${message}"}\n`);
  }
  const bad = await http(stack.gatewayUrl, "POST", "/api/tokens", { token: jwt, rawBody: "{" });
  t.is(bad.text, '{"error":"invalid request body"}\n');
});

test("multica runtime list: GET /api/runtimes, oldest first in today's shape (golden); ?owner=me only the caller's", async (t) => {
  const ws = await seedWorkspace(stack, "Runtimes");
  const register = (token: string, daemonId: string, type: string) =>
    http(stack.gatewayUrl, "POST", "/api/daemon/register", {
      token,
      body: {
        workspace_id: ws.workspaceId,
        daemon_id: daemonId,
        device_name: "box",
        cli_version: "0.3.0",
        runtimes: [{ type, version: "1.0", status: "online" }],
      },
    });
  const mine = (await register(ws.member.pat, "daemon-a", "claude")).json as { runtimes: Array<{ id: string }> };
  const theirs = (await register(ws.owner.pat, "daemon-b", "codex")).json as { runtimes: Array<{ id: string }> };

  const all = await get("/api/runtimes", ws.member.pat, { "x-workspace-id": ws.workspaceId });
  t.is(all.status, 200);
  t.is(all.contentType, "application/json");
  t.deepEqual(
    (all.json as Array<{ id: string }>).map((r) => r.id),
    [mine.runtimes[0]!.id, theirs.runtimes[0]!.id],
  );
  const body = normalize(all.text, { workspace: ws.workspaceId, member: ws.member.userId, owner: ws.owner.userId });
  t.is(body, golden(goldenFile("runtimes.json"), body));

  const own = await get(`/api/runtimes?owner=me&workspace_id=${ws.workspaceId}`, ws.member.jwt);
  t.deepEqual(
    (own.json as Array<{ id: string }>).map((r) => r.id),
    [mine.runtimes[0]!.id],
  );
  const other = await get("/api/runtimes?owner=someone", ws.owner.pat, { "x-workspace-id": ws.workspaceId });
  t.is((other.json as unknown[]).length, 2, "only owner=me filters");
  const empty = await seedWorkspace(stack);
  t.is((await get("/api/runtimes", empty.member.pat, { "x-workspace-id": empty.workspaceId })).text, "[]\n");
});

test("GET /api/runtimes: the header-scoped workspace middleware's answers", async (t) => {
  const ws = await seedWorkspace(stack);
  const stranger = await seedWorkspace(stack);
  const cases: Array<[Record<string, string>, number, string]> = [
    [{}, 400, '{"error":"workspace_id or workspace_slug is required"}'],
    [{ "x-workspace-id": "nope" }, 400, '{"error":"invalid workspace_id"}'],
    [{ "x-workspace-id": stranger.workspaceId }, 404, '{"error":"workspace not found"}'],
    [{ "x-workspace-slug": "no-such-slug" }, 404, '{"error":"workspace not found"}'],
  ];
  for (const [headers, status, text] of cases) {
    const answer = await get("/api/runtimes", ws.member.pat, headers);
    t.is(answer.status, status, JSON.stringify(headers));
    t.is(answer.text, text, JSON.stringify(headers));
  }
});

test("GET /api/workspaces/{id}: the workspace as GET /api/workspaces lists it (golden); 404 for a non-member, 400 for a bad id", async (t) => {
  const ws = await seedWorkspace(stack, "Repo Home");
  await stack.identity.updateWorkspace({
    workspaceId: ws.workspaceId,
    repos: { repos: [{ url: "https://github.com/acme/app", description: "main <app>" }] },
    settingsJson: '{"b": 1, "a": true}',
    context: "Be brief.",
    issuePrefix: "REP",
  });
  const answer = await get(`/api/workspaces/${ws.workspaceId}`, ws.member.pat);
  t.is(answer.status, 200);
  t.is(answer.contentType, "application/json");
  const listed = await get("/api/workspaces", ws.member.pat);
  t.is(answer.text, `${listed.text.slice(1, -2)}\n`, "the same object as in the list");
  const body = normalize(answer.text, { workspace: ws.workspaceId });
  t.is(body, golden(goldenFile("workspace.json"), body));

  const stranger = await seedWorkspace(stack);
  const foreign = await get(`/api/workspaces/${stranger.workspaceId}`, ws.member.pat);
  t.is(foreign.status, 404);
  t.is(foreign.text, '{"error":"workspace not found"}');
  const bad = await get("/api/workspaces/nope", ws.member.pat);
  t.is(bad.status, 400);
  t.is(bad.text, '{"error":"invalid workspace_id"}');
});
