import { createHash } from "node:crypto";
import test from "ava";
import { startGateway } from "@controlplane/gateway";
import { loadGatewayConfig } from "@controlplane/gateway/config";
import { createLogger } from "@controlplane/log";
import { waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, signJwt, startStack, type Stack } from "../support/stack.js";

const AUTH_CACHE_TTL_MS = 400;

let stack: Stack;
test.before(async () => {
  stack = await startStack({ AUTH_CACHE_TTL_MS: String(AUTH_CACHE_TTL_MS) });
});
test.after.always(async () => {
  await stack?.stop();
});

const reposPath = (workspaceId: string) => `/api/daemon/workspaces/${workspaceId}/repos`;

test("daemon auth: each rejected credential answers 401 with the middleware writer's body", async (t) => {
  const ws = await seedWorkspace(stack);
  const path = reposPath(ws.workspaceId);
  const cases: Array<[Record<string, string>, string]> = [
    [{}, "missing authorization header"],
    [{ authorization: "" }, "missing authorization header"],
    [{ authorization: `Basic ${ws.member.pat}` }, "invalid authorization format"],
    [{ authorization: `bearer ${ws.member.pat}` }, "invalid authorization format"],
    [{ authorization: "Bearer mdt_0000000000000000000000000000000000000000" }, "invalid daemon token"],
    [{ authorization: "Bearer mul_0000000000000000000000000000000000000000" }, "invalid token"],
    [{ authorization: "Bearer mat_0000000000000000000000000000000000000000" }, "invalid token"],
    [{ authorization: "Bearer not.a.jwt" }, "invalid token"],
    [{ authorization: `Bearer ${await signJwt(ws.member.userId, { secret: "some-other-secret-0123456789" })}` }, "invalid token"],
    [{ authorization: `Bearer ${await signJwt(ws.member.userId, { expiresInSeconds: -60 })}` }, "invalid token"],
    [{ authorization: `Bearer ${await signJwt(undefined)}` }, "invalid claims"],
    [{ authorization: `Bearer ${await signJwt("   ")}` }, "invalid claims"],
  ];
  for (const [headers, message] of cases) {
    const answer = await http(stack.gatewayUrl, "GET", path, { headers });
    t.is(answer.status, 401, JSON.stringify(headers));
    t.is(answer.contentType, "application/json");
    t.is(answer.text, `{"error":"${message}"}`, JSON.stringify(headers));
  }
});

test("daemon auth accepts a daemon token, a PAT and a JWT of a member", async (t) => {
  const ws = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 60 });
  for (const credential of [token, ws.member.pat, ws.member.jwt]) {
    t.is((await http(stack.gatewayUrl, "GET", reposPath(ws.workspaceId), { token: credential })).status, 200);
  }
});

test("tokens are stored only as SHA-256 hex hashes", async (t) => {
  const ws = await seedWorkspace(stack);
  const issued = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 0 });
  t.regex(issued.token, /^mdt_[0-9a-f]{40}$/);
  t.regex(ws.member.pat, /^mul_[0-9a-f]{40}$/);
  const { query } = await import("@controlplane/testkit");
  const rows = await query<{ token_hash: string; token_prefix: string }>(
    stack.db.url,
    "SELECT token_hash, token_prefix FROM registry.daemon_token WHERE id = $1",
    [issued.info!.id],
  );
  t.is(rows[0]!.token_hash, createHash("sha256").update(issued.token).digest("hex"));
  t.true(issued.token.startsWith(rows[0]!.token_prefix) && rows[0]!.token_prefix.length < 20);
  const dump = await query(
    stack.db.url,
    "SELECT * FROM registry.daemon_token UNION ALL SELECT id, token_hash, token_prefix, null, null, expires_at, revoked_at, created_at FROM registry.personal_access_token",
  );
  t.false(JSON.stringify(dump).includes(issued.token.slice(4)), "no secret stored");
  t.false(JSON.stringify(dump).includes(ws.member.pat.slice(4)), "no secret stored");
});

/**
 * Polls `path` with `token` until it answers `refusedWith`. Returns that
 * answer, and when each request answered otherwise was sent: what the
 * gateway cached before the change may answer only requests sent within the
 * cache TTL of the moment it was cached.
 */
async function pollUntilRefused(path: string, token: string, refusedWith: number) {
  const acceptedAt: number[] = [];
  const refused = await waitFor(`a ${refusedWith}`, async () => {
    const sentAt = Date.now();
    const a = await http(stack.gatewayUrl, "GET", path, { token });
    if (a.status === refusedWith) return a;
    acceptedAt.push(sentAt);
    return undefined;
  });
  return { refused, acceptedAt };
}

test("a revoked PAT is refused within the auth cache TTL", async (t) => {
  const ws = await seedWorkspace(stack);
  const path = reposPath(ws.workspaceId);
  t.is((await http(stack.gatewayUrl, "GET", path, { token: ws.member.pat })).status, 200, "cached as valid");
  const cachedBy = Date.now();
  await stack.identity.revokeToken({ tokenId: ws.member.patId });
  const { refused, acceptedAt } = await pollUntilRefused(path, ws.member.pat, 401);
  t.deepEqual(
    acceptedAt.filter((sentAt) => sentAt >= cachedBy + AUTH_CACHE_TTL_MS),
    [],
    "no request sent past the TTL was let in",
  );
  t.is(refused.text, '{"error":"invalid token"}');
});

test("a revoked daemon token is refused; an expired one too", async (t) => {
  const ws = await seedWorkspace(stack);
  const path = reposPath(ws.workspaceId);
  const revoked = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 0 });
  t.is((await http(stack.gatewayUrl, "GET", path, { token: revoked.token })).status, 200);
  await stack.identity.revokeToken({ tokenId: revoked.info!.id });
  await waitFor("the revoked daemon token to be refused", async () => (await http(stack.gatewayUrl, "GET", path, { token: revoked.token })).status === 401);

  const shortLived = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 1 });
  t.is((await http(stack.gatewayUrl, "GET", path, { token: shortLived.token })).status, 200);
  const expired = await waitFor(
    "the daemon token to expire",
    async () => {
      const a = await http(stack.gatewayUrl, "GET", path, { token: shortLived.token });
      return a.status === 401 ? a : undefined;
    },
    { timeoutMs: 4_000 },
  );
  t.is(expired.text, '{"error":"invalid daemon token"}');
});

test("a removed member loses access within the TTL", async (t) => {
  const ws = await seedWorkspace(stack);
  const path = reposPath(ws.workspaceId);
  t.is((await http(stack.gatewayUrl, "GET", path, { token: ws.member.pat })).status, 200);
  const cachedBy = Date.now();
  await stack.identity.removeMember({ workspaceId: ws.workspaceId, userId: ws.member.userId });
  const { refused, acceptedAt } = await pollUntilRefused(path, ws.member.pat, 404);
  t.deepEqual(
    acceptedAt.filter((sentAt) => sentAt >= cachedBy + AUTH_CACHE_TTL_MS),
    [],
    "no request sent past the TTL was let in",
  );
  t.is(refused.text, '{"error":"not found"}\n');
});

test("when the registry is down the gateway answers 503, never 401", async (t) => {
  const log = createLogger("test", "silent");
  const gateway = await startGateway(
    loadGatewayConfig({ GATEWAY_PORT: "0", GATEWAY_HOST: "127.0.0.1", REGISTRY_GRPC_ADDR: "127.0.0.1:1", PROFILE_CATALOG_GRPC_ADDR: "127.0.0.1:1" }),
    log,
  );
  try {
    const answer = await http(`http://127.0.0.1:${gateway.port}`, "GET", reposPath("00000000-0000-0000-0000-000000000000"), {
      token: "mul_0000000000000000000000000000000000000000",
    });
    t.is(answer.status, 503);
    t.is(answer.text, '{"error":"authentication unavailable"}');
  } finally {
    await gateway.stop();
  }
});

test("repos (D5): trimmed, de-duplicated, empty urls dropped, versioned by the sorted url set", async (t) => {
  const ws = await seedWorkspace(stack);
  await stack.identity.updateWorkspace({
    workspaceId: ws.workspaceId,
    repos: {
      repos: [
        { url: " https://b.example/r ", description: " kept as is " },
        { url: "https://a.example/r", description: "" },
        { url: "https://b.example/r", description: "duplicate" },
        { url: "   ", description: "empty" },
      ],
    },
    settingsJson: '{"b": 1, "a": {"x": "<y>"}}',
  });
  const answer = await http(stack.gatewayUrl, "GET", reposPath(ws.workspaceId), { token: ws.member.pat });
  t.is(answer.status, 200);
  const version = createHash("sha256").update("https://a.example/r\nhttps://b.example/r").digest("hex");
  t.is(
    answer.text,
    `{"workspace_id":"${ws.workspaceId}","repos":[{"url":"https://b.example/r","description":" kept as is "},{"url":"https://a.example/r"}],` +
      `"repos_version":"${version}","settings":{"a":{"x":"\\u003cy\\u003e"},"b":1}}\n`,
  );
});

test("repos of a workspace without repos: empty list, version of the empty string", async (t) => {
  const ws = await seedWorkspace(stack);
  const answer = await http(stack.gatewayUrl, "GET", reposPath(ws.workspaceId), { token: ws.member.jwt });
  t.like(answer.json as object, {
    repos: [],
    repos_version: createHash("sha256").update("").digest("hex"),
    settings: {},
  });
});

test("GET /api/workspaces lists only the caller's workspaces", async (t) => {
  const a = await seedWorkspace(stack, "Alpha");
  await seedWorkspace(stack, "Beta");
  const answer = await http(stack.gatewayUrl, "GET", "/api/workspaces", { token: a.member.jwt });
  t.is(answer.status, 200);
  const list = answer.json as Array<{ id: string; name: string }>;
  t.deepEqual(
    list.map((w) => [w.id, w.name]),
    [[a.workspaceId, "Alpha"]],
  );
});

test("token renewal: only PATs, only near expiry, one winner under concurrency", async (t) => {
  const ws = await seedWorkspace(stack);
  const renew = (token: string) => http(stack.gatewayUrl, "POST", "/api/tokens/current/renew", { token, body: {} });

  const jwtAnswer = await renew(ws.member.jwt);
  t.is(jwtAnswer.status, 400);
  t.deepEqual(jwtAnswer.json, { error: "only personal access tokens can be renewed" });

  const far = await stack.identity.issuePersonalAccessToken({ userId: ws.member.userId, name: "f", ttlSeconds: 30 * 86_400 });
  const farFromExpiry = await renew(far.token);
  t.like(farFromExpiry.json as object, { renewed: false });
  t.is(Date.parse((farFromExpiry.json as { expires_at: string }).expires_at), Math.floor(far.info!.expiresAt!.getTime() / 1000) * 1000);

  const never = await stack.identity.issuePersonalAccessToken({ userId: ws.member.userId, name: "n", ttlSeconds: 0 });
  t.is((await renew(never.token)).text, '{"expires_at":"","renewed":false}\n');

  const soon = await stack.identity.issuePersonalAccessToken({ userId: ws.member.userId, name: "s", ttlSeconds: 86_400 });
  const answers = await Promise.all([renew(soon.token), renew(soon.token), renew(soon.token)]);
  t.deepEqual(
    answers.map((a) => a.status),
    [200, 200, 200],
  );
  const bodies = answers.map((a) => a.json as { expires_at: string; renewed: boolean });
  t.is(bodies.filter((b) => b.renewed).length, 1, "exactly one renewal wins");
  const expiry = Date.parse(bodies.find((b) => b.renewed)!.expires_at);
  t.true(Math.abs(expiry - (Date.now() + 90 * 86_400_000)) < 60_000, "extended to about 90 days");
});

test("unknown paths answer Go's 404 text, wrong methods an empty 405, big bodies 413", async (t) => {
  const ws = await seedWorkspace(stack);
  const unknown = await http(stack.gatewayUrl, "GET", "/api/nothing-here");
  t.is(unknown.status, 404);
  t.is(unknown.text, "404 page not found\n");
  const wrongMethod = await http(stack.gatewayUrl, "DELETE", `/api/workspaces/${ws.workspaceId}/runtime-profiles`, { token: ws.owner.pat });
  t.is(wrongMethod.status, 405);
  t.is(wrongMethod.text, "");
  const daemonUnknown = await http(stack.gatewayUrl, "GET", "/api/daemon/nothing");
  t.is(daemonUnknown.status, 401, "daemon auth runs before routing");
  const huge = await http(stack.gatewayUrl, "POST", `/api/workspaces/${ws.workspaceId}/runtime-profiles`, {
    token: ws.owner.pat,
    rawBody: JSON.stringify({ display_name: "x".repeat(5 * 1024 * 1024) }),
  });
  t.is(huge.status, 413);
});
