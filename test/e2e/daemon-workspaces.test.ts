import { createHash, randomUUID } from "node:crypto";
import test from "ava";
import { query } from "@controlplane/testkit";
import { MemberRole } from "@controlplane/proto/registry/v1/identity";
import { golden } from "../support/golden.js";
import { http } from "../support/http.js";
import { seedWorkspace, signJwt, startStack, type Stack } from "../support/stack.js";

// N1, GET /api/daemon/workspaces (§13.6): the list today's daemon syncs its
// workspaces from, with a weak ETag and 304s. Exact bytes and headers.

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const PATH = "/api/daemon/workspaces";
const list = (token: string, headers: Record<string, string> = {}) => http(stack.gatewayUrl, "GET", PATH, { token, headers });
/** The ETag the original computes: weak, lower-case hex SHA-256 of the body without its newline. */
const etagOf = (body: string) => `W/"${createHash("sha256").update(body.replace(/\n$/, "")).digest("hex")}"`;

test("H-34: a user gets every membership as [{id,name}] ordered by id, with an ETag; If-None-Match equal to it is a 304 with no body (golden)", async (t) => {
  const user = randomUUID();
  // Fixed ids (this file's database is its own), created in the reverse of id order.
  const ids = ["00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"];
  for (const [i, name] of ["Zeta", "<Alpha & Co>", "Mid"].entries()) {
    await query(stack.db.url, "INSERT INTO registry.workspace (id, name, slug) VALUES ($1, $2, $3)", [ids[i], name, `fixed-${i}`]);
    await stack.identity.addMember({ workspaceId: ids[i]!, userId: user, role: MemberRole.MEMBER_ROLE_MEMBER });
  }
  await seedWorkspace(stack, "Not mine");
  const jwt = await signJwt(user);

  const answer = await list(jwt);
  t.is(answer.status, 200);
  t.is(answer.contentType, "application/json");
  t.is(answer.headers.get("cache-control"), "private, no-cache");
  t.is(answer.headers.get("etag"), etagOf(answer.text));
  t.is(answer.headers.get("content-length"), String(Buffer.byteLength(answer.text)));
  t.is(answer.text, golden(new URL("golden/daemon-workspaces.json", import.meta.url), answer.text));
  t.deepEqual(
    (answer.json as Array<{ id: string }>).map((w) => w.id),
    [...ids].sort(),
    "ordered by id, not by creation",
  );

  const etag = answer.headers.get("etag")!;
  const unchanged = await list(jwt, { "if-none-match": etag });
  t.is(unchanged.status, 304);
  t.is(unchanged.text, "");
  t.is(unchanged.headers.get("etag"), etag, "the 304 still carries the ETag");
  t.is(unchanged.headers.get("cache-control"), "private, no-cache");
  t.is(unchanged.headers.get("content-type"), null, "no body, so no content type (as Go's 304)");
  t.is(unchanged.headers.get("content-length"), null);
});

test("the ETag comparison is byte for byte: a list form, the strong form or a stale tag get the full answer", async (t) => {
  const ws = await seedWorkspace(stack);
  const first = await list(ws.member.pat);
  const etag = first.headers.get("etag")!;
  for (const sent of [`${etag}, W/"other"`, etag.slice(2), "*", etag.toUpperCase(), `W/"${"0".repeat(64)}"`]) {
    const answer = await list(ws.member.pat, { "if-none-match": sent });
    t.is(answer.status, 200, sent);
    t.is(answer.text, first.text, sent);
  }
  // A membership change changes the tag: the cached one no longer matches.
  const { workspace } = await stack.identity.createWorkspace({ name: "Later", slug: "", description: "", repos: [], settingsJson: "", issuePrefix: "" });
  await stack.identity.addMember({ workspaceId: workspace!.id, userId: ws.member.userId, role: MemberRole.MEMBER_ROLE_MEMBER });
  const changed = await list(ws.member.pat, { "if-none-match": etag });
  t.is(changed.status, 200);
  t.not(changed.headers.get("etag"), etag);
  t.is((changed.json as unknown[]).length, 2);
});

test("H-35: a daemon token gets exactly its workspace; a user with no membership gets []", async (t) => {
  const ws = await seedWorkspace(stack, "Daemon's");
  await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 0 });
  const answer = await list(token);
  t.is(answer.status, 200);
  t.is(answer.text, `[{"id":"${ws.workspaceId}","name":"Daemon's"}]\n`);
  t.is(answer.headers.get("etag"), etagOf(answer.text));

  const loner = await list(await signJwt(randomUUID()));
  t.is(loner.status, 200);
  t.is(loner.text, "[]\n");
  t.is(loner.headers.get("etag"), etagOf("[]"));
  const notAUuid = await list(await signJwt("not-a-uuid"));
  t.is(notAUuid.text, "[]\n", "a user id that is not a UUID has no memberships");
});

test("a daemon token whose workspace is gone answers 404 workspace not found", async (t) => {
  const ws = await seedWorkspace(stack);
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 0 });
  t.is((await list(token)).status, 200, "the token's identity is now cached by the gateway");
  // Deleting the workspace deletes its tokens too; the cached identity still names it.
  await query(stack.db.url, "DELETE FROM registry.workspace WHERE id = $1", [ws.workspaceId]);
  const gone = await list(token);
  t.is(gone.status, 404);
  t.is(gone.text, '{"error":"workspace not found"}\n');
});

test("daemon auth guards it; other methods are 405, other paths keep chi's 404", async (t) => {
  const ws = await seedWorkspace(stack);
  const noAuth = await http(stack.gatewayUrl, "GET", PATH);
  t.is(noAuth.status, 401);
  t.is(noAuth.text, '{"error":"missing authorization header"}');
  const wrongMethod = await http(stack.gatewayUrl, "POST", PATH, { token: ws.member.pat, body: {} });
  t.is(wrongMethod.status, 405);
  t.is(wrongMethod.text, "");
  const trailing = await http(stack.gatewayUrl, "GET", `${PATH}/`, { token: ws.member.pat });
  t.is(trailing.status, 404);
  t.is(trailing.text, "404 page not found\n");
});
