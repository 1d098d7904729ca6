import { randomUUID } from "node:crypto";
import test from "ava";
import { waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { seedRuntime } from "../support/tasks.js";

// The gateway's runtime reads live long (RUNTIME_CACHE_TTL_MS) because the
// registry's runtime.deleted drops them: a deleted runtime is not served from
// the cache for the rest of the TTL.
const RUNTIME_CACHE_TTL_MS = 600_000;
let stack: Stack;

test.before(async () => {
  stack = await startStack({ RUNTIME_CACHE_TTL_MS: String(RUNTIME_CACHE_TTL_MS) });
});
test.after.always(async () => {
  await stack?.stop();
});

test("a runtime the registry deletes answers 404 runtime not found long before the gateway's cache of it expires", async (t) => {
  const ws = await seedWorkspace(stack);
  const token = ws.member.pat;
  const oldHost = `old-host-${randomUUID().slice(0, 6)}`;
  const legacy = await seedRuntime(stack, ws, oldHost);
  // The pending list asks the task queue nothing about the runtime: only the gateway's read (cached here) can refuse it.
  const pending = () => http(stack.gatewayUrl, "GET", `/api/daemon/runtimes/${legacy}/tasks/pending`, { token });
  t.is((await pending()).status, 200);

  // The daemon registers under its new id: the legacy runtime is folded in and its row deleted.
  const merged = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token,
    body: { workspace_id: ws.workspaceId, daemon_id: `new-${oldHost}`, legacy_daemon_ids: [oldHost], runtimes: [{ type: "claude" }] },
  });
  t.is(merged.status, 200);

  const gone = await waitFor(
    "the deleted runtime to answer 404",
    async () => {
      const answer = await pending();
      return answer.status === 404 ? answer : undefined;
    },
    { timeoutMs: RUNTIME_CACHE_TTL_MS / 10, intervalMs: 50 },
  );
  t.is(gone.text, '{"error":"runtime not found"}\n');
});
