import test from "ava";
import { LIMITS } from "@controlplane/config";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type SeededWorkspace, type Stack } from "../support/stack.js";
import { seedRuntime } from "../support/tasks.js";

// The model-list (D10) and local-skills (D11) results as today's daemon
// reports them (§13.9): stored whole, bounded; the seed-era reports stored
// exactly as before. And HC-1's HTTP half: the heartbeat answer never
// carries server_capabilities.

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const TODAY = { "x-client-capabilities": "skill-bundles-v1,local-worktree-v1,rpc-v1" };

function post(path: string, token: string, body: unknown, headers: Record<string, string> = {}) {
  return http(stack.gatewayUrl, "POST", path, { token, body, headers });
}

/** Queues a request of `kind` for the runtime and has its daemon pop it, as a beat does. */
async function popped(ws: SeededWorkspace, runtimeId: string, kind: "models" | "local-skills"): Promise<string> {
  const queued = await post(`/api/runtimes/${runtimeId}/${kind}`, ws.member.pat, {});
  if (queued.status !== 200) throw new Error(`enqueue ${kind}: ${queued.text}`);
  const id = (queued.json as { id: string }).id;
  const beat = await post("/api/daemon/heartbeat", ws.member.pat, { runtime_id: runtimeId, supports_batch_import: true }, TODAY);
  const key = kind === "models" ? "pending_model_list" : "pending_local_skills";
  if ((beat.json as Record<string, { id?: string }>)[key]?.id !== id) throw new Error(`beat did not deliver ${kind}: ${beat.text}`);
  return id;
}

const stored = async (actionId: string) => {
  const { action } = await stack.liveness.getAction({ actionId });
  return { status: action!.status, result: JSON.parse(action!.resultJson ?? "null") as unknown };
};

test("D10: today's model list keeps service_tiers and fallback; the read-back is the seed's shape", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const id = await popped(ws, runtimeId, "models");
  const models = [
    {
      id: "gpt-5",
      label: "GPT-5",
      provider: "openai",
      default: true,
      thinking: { supported_levels: [{ value: "high", label: "High" }], default_level: "high" },
      service_tiers: [
        { id: "flex", name: "Flex", description: "cheaper, slower" },
        { id: "priority", name: "Priority" },
      ],
    },
  ];
  const report = await post(
    `/api/daemon/runtimes/${runtimeId}/models/${id}/result`,
    ws.member.pat,
    { status: "completed", models, supported: true, fallback: true },
    TODAY,
  );
  t.is(report.status, 200);
  t.is(report.text, '{"status":"ok"}\n');
  t.deepEqual(await stored(id), { status: "completed", result: { models, supported: true, fallback: true } }, "a fallback list is stored as a completed one");

  const readBack = await http(stack.gatewayUrl, "GET", `/api/runtimes/${runtimeId}/models/${id}`, { token: ws.member.pat });
  t.like(readBack.json as object, {
    status: "completed",
    supported: true,
    models: [
      {
        id: "gpt-5",
        label: "GPT-5",
        provider: "openai",
        default: true,
        thinking: { supported_levels: [{ value: "high", label: "High" }], default_level: "high" },
      },
    ],
  });
});

test("D10: a seed-era model list is stored exactly as before (no fallback key)", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const id = await popped(ws, runtimeId, "models");
  const models = [{ id: "sonnet", label: "Sonnet" }];
  t.is((await post(`/api/daemon/runtimes/${runtimeId}/models/${id}/result`, ws.member.pat, { status: "completed", models })).status, 200);
  t.deepEqual(await stored(id), { status: "completed", result: { models, supported: true } });
});

test("D11: today's local-skill list keeps skills[].root, mcp_servers and mcp_supported (absent: false)", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const skills = [{ key: "pdf", name: "PDF", source_path: "/home/a/.claude/skills/pdf", provider: "claude", file_count: 2, root: "/home/a/.claude/skills" }];
  const mcpServers = [
    { name: "github", transport: "stdio", source: "user", enabled: true },
    { name: "linear", enabled: false },
  ];

  const first = await popped(ws, runtimeId, "local-skills");
  const report = await post(
    `/api/daemon/runtimes/${runtimeId}/local-skills/${first}/result`,
    ws.member.pat,
    { status: "completed", skills, supported: true, mcp_servers: mcpServers, mcp_supported: true },
    TODAY,
  );
  t.is(report.text, '{"status":"ok"}\n');
  t.deepEqual(await stored(first), { status: "completed", result: { skills, supported: true, mcp_servers: mcpServers, mcp_supported: true } });

  const second = await popped(ws, runtimeId, "local-skills");
  await post(`/api/daemon/runtimes/${runtimeId}/local-skills/${second}/result`, ws.member.pat, { status: "completed", skills, mcp_servers: [] }, TODAY);
  t.deepEqual(await stored(second), { status: "completed", result: { skills, supported: true, mcp_servers: [], mcp_supported: false } });

  const seedEra = await popped(ws, runtimeId, "local-skills");
  await post(`/api/daemon/runtimes/${runtimeId}/local-skills/${seedEra}/result`, ws.member.pat, { status: "completed", skills, supported: true });
  t.deepEqual(await stored(seedEra), { status: "completed", result: { skills, supported: true } }, "nothing added to a seed-era report");
});

test("the new result fields are bounded and typed like the old ones", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const id = await popped(ws, runtimeId, "local-skills");
  const path = `/api/daemon/runtimes/${runtimeId}/local-skills/${id}/result`;
  const tooMany = await post(
    path,
    ws.member.pat,
    { status: "completed", mcp_servers: Array.from({ length: LIMITS.RESULT_LIST_ENTRIES + 1 }, () => ({})) },
    TODAY,
  );
  t.is(tooMany.status, 400);
  t.is(tooMany.text, `{"error":"mcp_servers: too many entries (at most ${LIMITS.RESULT_LIST_ENTRIES})"}\n`);
  const wrongType = await post(path, ws.member.pat, { status: "completed", mcp_supported: "yes" }, TODAY);
  t.is(wrongType.text, '{"error":"invalid request body"}\n');
  const models = await popped(ws, runtimeId, "models");
  const badFallback = await post(`/api/daemon/runtimes/${runtimeId}/models/${models}/result`, ws.member.pat, { status: "completed", fallback: 1 }, TODAY);
  t.is(badFallback.text, '{"error":"invalid request body"}\n');
  t.is((await stored(id)).status, "running", "nothing stored on a 400");
});

test("HC-1: the HTTP heartbeat answer never carries server_capabilities, whichever daemon beats", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  for (const headers of [TODAY, {}]) {
    const beat = await post("/api/daemon/heartbeat", ws.member.pat, { runtime_id: runtimeId, supports_batch_import: true }, headers);
    t.is(beat.status, 200);
    t.is(beat.text, '{"status":"ok"}\n');
  }
});
