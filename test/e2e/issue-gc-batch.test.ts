import { randomUUID } from "node:crypto";
import test from "ava";
import { LIMITS } from "@controlplane/config";
import { golden, normalize } from "../support/golden.js";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";

// N6, the batch issue gc-check of today's daemon (contract 13.7): answered
// from the issues the product recorded, like the single check (D22).

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const check = (token: string, workspaceId: string, body: unknown) =>
  http(stack.gatewayUrl, "POST", `/api/daemon/workspaces/${workspaceId}/issues/gc-check`, { token, body });
const checkRaw = (token: string, workspaceId: string, rawBody: string) =>
  http(stack.gatewayUrl, "POST", `/api/daemon/workspaces/${workspaceId}/issues/gc-check`, { token, rawBody });
const single = (token: string, issueId: string) => http(stack.gatewayUrl, "GET", `/api/daemon/issues/${issueId}/gc-check`, { token });

async function issue(ws: SeededWorkspace, status: string, updatedAt = new Date("2026-01-02T03:04:05.678Z")) {
  const id = randomUUID();
  await stack.tasks.recordWorkItem({ item: { kind: "issue", id, workspaceId: ws.workspaceId, status, updatedAt } });
  return id;
}

test("a done issue and a missing id: one item each, in order, status and updated_at only when found (golden, H-46)", async (t) => {
  const ws = await seedWorkspace(stack);
  const done = await issue(ws, "done");
  const missing = randomUUID();
  const answer = await check(ws.member.pat, ws.workspaceId, { issue_ids: [done, missing] });
  t.is(answer.status, 200);
  t.is(answer.headers.get("content-type"), "application/json");
  const body = normalize(answer.text, { done, missing });
  t.is(body, golden(new URL("golden/issues-gc-check.json", import.meta.url), body));
  t.is(answer.text, `{"issues":[{"id":"${done}","found":true,"status":"done","updated_at":"2026-01-02T03:04:05.678Z"},{"id":"${missing}","found":false}]}\n`);
});

test("ids are echoed as sent, duplicates kept; deleted and other workspaces' issues are not found", async (t) => {
  const ws = await seedWorkspace(stack);
  const other = await seedWorkspace(stack);
  const live = await issue(ws, "in_progress");
  const deleted = await issue(ws, "done");
  await stack.tasks.deleteWorkItem({ kind: "issue", id: deleted });
  const foreign = await issue(other, "done");
  const upper = live.toUpperCase();
  const bare = live.replaceAll("-", "");
  const answer = await check(ws.member.pat, ws.workspaceId, { issue_ids: [upper, deleted, live, foreign, bare, live] });
  const items = (answer.json as { issues: Array<{ id: string; found: boolean; status?: string }> }).issues;
  t.deepEqual(
    items.map((i) => [i.id, i.found, i.status]),
    [
      [upper, true, "in_progress"],
      [deleted, false, undefined],
      [live, true, "in_progress"],
      [foreign, false, undefined],
      [bare, true, "in_progress"],
      [live, true, "in_progress"],
    ],
  );
});

test("the batch and the single check agree on every issue, whatever status the product recorded (H-47)", async (t) => {
  const ws = await seedWorkspace(stack);
  const ids = [await issue(ws, "todo"), await issue(ws, "cancelled"), await issue(ws, "done"), await issue(ws, "blocked")];
  const batch = (await check(ws.member.pat, ws.workspaceId, { issue_ids: ids })).json as {
    issues: Array<{ status: string; updated_at: string }>;
  };
  for (const [i, id] of ids.entries()) {
    t.deepEqual((await single(ws.member.pat, id)).json, { status: batch.issues[i]!.status, updated_at: batch.issues[i]!.updated_at });
  }
});

test("bounds and refusals in the original's order: workspace id, access, body, count, ids (HC-5)", async (t) => {
  const ws = await seedWorkspace(stack);
  const token = ws.member.pat;
  t.is((await check(token, "nope", { issue_ids: [] })).text, '{"error":"invalid workspace_id"}\n');
  t.is((await check(token, randomUUID(), { issue_ids: "not even a list" })).text, '{"error":"not found"}\n', "access before the body");

  const tooMany = Array.from({ length: LIMITS.GC_CHECK_ISSUE_IDS + 1 }, () => randomUUID());
  const many = await check(token, ws.workspaceId, { issue_ids: tooMany });
  t.is(many.status, 400);
  t.is(many.text, '{"error":"too many issue_ids"}\n');
  const atBound = await check(token, ws.workspaceId, { issue_ids: tooMany.slice(1) });
  t.is((atBound.json as { issues: unknown[] }).issues.length, LIMITS.GC_CHECK_ISSUE_IDS);

  t.is((await check(token, ws.workspaceId, { issue_ids: [randomUUID(), "x"] })).text, '{"error":"invalid issue_id"}\n');
  t.is((await check(token, ws.workspaceId, { issue_ids: [null] })).text, '{"error":"invalid issue_id"}\n');
  t.is((await check(token, ws.workspaceId, { issue_ids: [7] })).text, '{"error":"invalid request body"}\n');
  t.is((await checkRaw(token, ws.workspaceId, "")).text, '{"error":"invalid request body"}\n');
  t.is((await checkRaw(token, ws.workspaceId, "{")).text, '{"error":"invalid request body"}\n');
  const padded = JSON.stringify({ issue_ids: [] }) + " ".repeat(LIMITS.GC_CHECK_BODY_BYTES);
  t.is((await checkRaw(token, ws.workspaceId, padded)).text, '{"error":"invalid request body"}\n', "over 64 KiB");

  for (const body of ['{"issue_ids":[]}', "{}", "null", '{"issue_ids":null}']) {
    const answer = await checkRaw(token, ws.workspaceId, body);
    t.is(answer.status, 200, body);
    t.is(answer.text, '{"issues":[]}\n');
  }
});

test("a daemon token reaches its own workspace only (H-46)", async (t) => {
  const ws = await seedWorkspace(stack);
  const other = await seedWorkspace(stack);
  const done = await issue(ws, "done");
  const own = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 60 });
  const foreign = await stack.identity.issueDaemonToken({ workspaceId: other.workspaceId, daemonId: "d", ttlSeconds: 60 });
  t.like((await check(own.token, ws.workspaceId, { issue_ids: [done] })).json as object, { issues: [{ id: done, found: true }] });
  const refused = await check(foreign.token, ws.workspaceId, { issue_ids: [done] });
  t.is(refused.status, 404);
  t.is(refused.text, '{"error":"not found"}\n');
  t.is((await check(other.member.pat, ws.workspaceId, { issue_ids: [done] })).text, '{"error":"not found"}\n');
});

test("other methods on the path answer 405, and a near miss keeps the router's 404 the daemon falls back on", async (t) => {
  const ws = await seedWorkspace(stack);
  const path = `/api/daemon/workspaces/${ws.workspaceId}/issues/gc-check`;
  t.is((await http(stack.gatewayUrl, "GET", path, { token: ws.member.pat })).status, 405);
  const miss = await http(stack.gatewayUrl, "POST", `${path}s`, { token: ws.member.pat, body: {} });
  t.is(miss.status, 404);
  t.is(miss.text.trim(), "404 page not found");
});
