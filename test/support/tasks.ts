import { randomUUID } from "node:crypto";
import type { EnqueueTaskRequest } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { http } from "./http.js";
import type { SeededWorkspace, Stack } from "./stack.js";

/** Registers one built-in runtime for a daemon, as the daemon would (the member becomes its owner). */
export async function seedRuntime(stack: Stack, ws: SeededWorkspace, daemonId = `daemon-${randomUUID().slice(0, 8)}`): Promise<string> {
  const answer = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token: ws.member.pat,
    body: {
      workspace_id: ws.workspaceId,
      daemon_id: daemonId,
      device_name: "box",
      runtimes: [{ type: "claude", version: "2.0", status: "online" }],
    },
  });
  if (answer.status !== 200) throw new Error(`register failed: ${answer.status} ${answer.text}`);
  return (answer.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
}

export async function seedAgent(stack: Stack, ws: SeededWorkspace, runtimeId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const { agent } = await stack.registry.upsertAgent({
    workspaceId: ws.workspaceId,
    runtimeId,
    name: "coder",
    instructions: "Write good code.",
    customEnv: { ZED: "z", ALPHA: "a" },
    customArgs: ["--fast"],
    runtimeConfigJson: "",
    skills: [],
    maxConcurrentTasks: 0,
    visibility: "",
    ...extra,
  });
  return agent!.id;
}

/** Enqueues an issue task (a fresh issue unless one is given). */
export async function enqueue(stack: Stack, agentId: string, extra: Partial<EnqueueTaskRequest> = {}) {
  const { task, deduplicated } = await stack.tasks.enqueueTask({
    agentId,
    priority: 2,
    issueId: randomUUID(),
    forceFreshSession: false,
    maxAttempts: 0,
    ...extra,
  });
  return { task: task!, deduplicated };
}

/** Claims through the gateway as the daemon does; `wait` in seconds opts into the long-poll. */
export function claimOverHttp(stack: Stack, token: string, runtimeId: string, wait?: number) {
  const query = wait === undefined ? "" : `?wait=${wait}`;
  return http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtimeId}/tasks/claim${query}`, { token, body: {} });
}
