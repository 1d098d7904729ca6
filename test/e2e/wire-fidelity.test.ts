import { randomUUID } from "node:crypto";
import test from "ava";
import { golden, normalize } from "../support/golden.js";
import { http } from "../support/http.js";
import { MemberRole } from "@controlplane/proto/registry/v1/identity";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";
import { claimOverHttp, enqueue, seedAgent, seedRuntime } from "../support/tasks.js";

/*
 * The original's bytes where it differed from a naive encoding: answers it
 * built as Go maps (keys sorted), stored JSON it decoded into `any` (keys
 * sorted at every depth), NULL columns written as null, and its redaction.
 * Register, heartbeat and the task result are in register.json,
 * heartbeat.json and complete.json.
 */

let stack: Stack;
test.before(async () => {
  stack = await startStack();
});
test.after.always(async () => {
  await stack?.stop();
});

const goldenFile = (name: string) => new URL(`golden/${name}`, import.meta.url);

test("the daemon's profile list (D6) is a Go map: runtime_profiles before workspace_id (golden)", async (t) => {
  const ws = await seedWorkspace(stack);
  const base = `/api/workspaces/${ws.workspaceId}/runtime-profiles`;
  for (const [name, enabled] of [
    ["Fast Claude", true],
    ["Off", false],
    ["Wrapped Codex", true],
  ] as const) {
    const created = await http(stack.gatewayUrl, "POST", base, {
      token: ws.admin.pat,
      body: { display_name: name, protocol_family: name.includes("Codex") ? "codex" : "claude", command_name: "cmd", fixed_args: ["--x"], enabled },
    });
    t.is(created.status, 201);
  }
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 0 });
  const answer = await http(stack.gatewayUrl, "GET", `/api/daemon/workspaces/${ws.workspaceId}/runtime-profiles`, { token });
  t.is(answer.status, 200);
  const body = normalize(answer.text, { workspace: ws.workspaceId, admin: ws.admin.userId });
  t.is(body, golden(goldenFile("daemon-profiles.json"), body));
});

test("gc-checks (D22–D25) are Go maps: completed_at / status / updated_at in key order (golden)", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  const { task } = await enqueue(stack, agentId);
  const issue = randomUUID();
  const chat = randomUUID();
  const run = randomUUID();
  const idle = randomUUID();
  const at = new Date("2026-01-02T03:04:05.678Z");
  await stack.tasks.recordWorkItem({ item: { kind: "issue", id: issue, workspaceId: ws.workspaceId, status: "in_review", updatedAt: at } });
  await stack.tasks.recordWorkItem({ item: { kind: "chat_session", id: chat, workspaceId: ws.workspaceId, status: "archived", updatedAt: at } });
  await stack.tasks.recordWorkItem({
    item: { kind: "autopilot_run", id: run, workspaceId: ws.workspaceId, status: "completed", updatedAt: at, completedAt: at },
  });
  await stack.tasks.recordWorkItem({ item: { kind: "autopilot_run", id: idle, workspaceId: ws.workspaceId, status: "running", updatedAt: at } });
  const { token } = await stack.identity.issueDaemonToken({ workspaceId: ws.workspaceId, daemonId: "d", ttlSeconds: 0 });
  let body = "";
  for (const path of [`/issues/${issue}`, `/chat-sessions/${chat}`, `/autopilot-runs/${run}`, `/autopilot-runs/${idle}`, `/tasks/${task.id}`]) {
    const answer = await http(stack.gatewayUrl, "GET", `/api/daemon${path}/gc-check`, { token });
    t.is(answer.status, 200, path);
    body += answer.text;
  }
  t.is(body, golden(goldenFile("gc-check.json"), body));
});

test("issue usage (T4) is a Go map: task_count first (golden)", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  const { task } = await enqueue(stack, agentId);
  await claimOverHttp(stack, ws.member.pat, runtimeId);
  const usage = [{ provider: "anthropic", model: "opus", input_tokens: 10, output_tokens: 5, cache_read_tokens: 1, cache_write_tokens: 2 }];
  t.is((await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/usage`, { token: ws.member.pat, body: { usage } })).status, 200);
  const answer = await http(stack.gatewayUrl, "GET", `/api/issues/${task.issueId}/usage`, {
    token: ws.member.pat,
    headers: { "x-workspace-id": ws.workspaceId },
  });
  t.is(answer.status, 200);
  t.is(answer.text, golden(goldenFile("issue-usage.json"), answer.text));
});

test("workspaces (U1): settings and repos decoded as Go maps, an empty description null; repos (D5) stay as stored (golden)", async (t) => {
  const ws = await seedWorkspace(stack);
  const settingsJson = '{"theme": "dark", "b": {"z": 1, "a": [2, {"y": true, "x": null}]}, "10": 1, "9": 2.50}';
  await stack.identity.updateWorkspace({
    workspaceId: ws.workspaceId,
    repos: {
      repos: [
        { url: " https://github.com/acme/app ", description: "main <app>" },
        { url: "https://github.com/acme/lib", description: "" },
      ],
    },
    settingsJson,
    context: "Be kind.",
  });
  const { workspace: second } = await stack.identity.createWorkspace({
    name: "Second",
    slug: "",
    description: "The second one",
    repos: [],
    settingsJson: "",
    issuePrefix: "SEC",
  });
  await stack.identity.addMember({ workspaceId: second!.id, userId: ws.member.userId, role: MemberRole.MEMBER_ROLE_MEMBER });
  const names = { workspace: ws.workspaceId, second: second!.id };

  const list = await http(stack.gatewayUrl, "GET", "/api/workspaces", { token: ws.member.pat });
  t.is(list.status, 200);
  const listBody = normalize(list.text, names).replace(/"(?:name|slug)":"ws-[0-9a-f]{8}"/g, (m) => m.replace(/ws-[0-9a-f]{8}/, "<name>"));
  t.is(listBody, golden(goldenFile("workspaces.json"), listBody));

  const repos = await http(stack.gatewayUrl, "GET", `/api/daemon/workspaces/${ws.workspaceId}/repos`, { token: ws.member.pat });
  t.is(repos.status, 200);
  const reposBody = normalize(repos.text, names);
  t.is(reposBody, golden(goldenFile("workspace-repos.json"), reposBody));
});

test("messages (D20 → D21): every redaction pattern as the original applied it; input a Go map (golden)", async (t) => {
  const ws = await seedWorkspace(stack);
  const runtimeId = await seedRuntime(stack, ws);
  const agentId = await seedAgent(stack, ws, runtimeId);
  const { task } = await enqueue(stack, agentId);
  await claimOverHttp(stack, ws.member.pat, runtimeId);
  // One line per pattern, in the original's order (labels free of keywords: "secret:" would be one).
  const lines = [
    "1) key AKIAIOSFODNN7EXAMPLE end",
    "2) aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "3) -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY----- done",
    `4) ghp_${"a".repeat(36)} x`,
    `5) sk-${"b".repeat(20)}- x`,
    "6) xoxb-1234567890-abcdef",
    `7) glpat-${"c".repeat(20)}`,
    "8) eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fw.",
    "9) Authorization: bearer abc.def==",
    "10) postgres://user:pw@db:5432/x",
    "11) export API_KEY=abc123",
    "10+11) DATABASE_URL=postgres://u:pw@db/x",
  ];
  const sent = await http(stack.gatewayUrl, "POST", `/api/daemon/tasks/${task.id}/messages`, {
    token: ws.member.pat,
    body: {
      messages: [
        { seq: 1, type: "text", content: lines.join("\n") },
        {
          seq: 2,
          type: "tool_use",
          tool: "bash",
          input: { command: "export PASSWORD=hunter2 && run", b: 1.5, "10": "TOKEN=x", "9": null, a: { z: "TOKEN=nested", y: [1] } },
        },
        { seq: 3, type: "tool_result", input: {}, output: "Bearer abc.def.ghi\nredis://cache:6379/0" },
      ],
    },
  });
  t.is(sent.text, '{"status":"ok"}\n');
  const answer = await http(stack.gatewayUrl, "GET", `/api/daemon/tasks/${task.id}/messages`, { token: ws.member.pat });
  t.is(answer.status, 200);
  const body = normalize(answer.text, { task: task.id, issue: task.issueId! }).replace(/"created_at":"[^"]+"/g, '"created_at":"<time>"');
  t.is(body, golden(goldenFile("messages.json"), body));
});
