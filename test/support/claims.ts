import { randomUUID } from "node:crypto";
import { query, waitFor } from "@controlplane/testkit";
import { http, type HttpAnswer } from "./http.js";
import type { SeededWorkspace, Stack } from "./stack.js";

/** What today's daemon sends on every request (contract §13, census §1.1). */
export const TODAYS_CAPABILITIES = "skill-bundles-v1,coalesced-comments-v1,execution-manifest-v1,agent-skill-v1,remote-mcp-v1,local-worktree-v1,rpc-v1";

/** The batch claim (N2) as today's daemon calls it; `path` picks the alias. */
export function batchClaim(stack: Stack, token: string, body: unknown, path = "/api/daemon/tasks/claim"): Promise<HttpAnswer> {
  return http(stack.gatewayUrl, "POST", path, { token, body, headers: { "x-client-capabilities": TODAYS_CAPABILITIES } });
}

export type ClaimedJson = Record<string, unknown> & {
  id: string;
  runtime_id: string;
  agent_id: string;
  status: string;
  auth_token: string;
  delivered_comment_ids: string[];
  agent?: { id: string };
};

export const tasksOf = (answer: HttpAnswer) => (answer.json as { tasks: ClaimedJson[] }).tasks;

/** The per-runtime claim (D7) as today's daemon calls it (its fallback). */
export function claimAsToday(stack: Stack, token: string, runtimeId: string): Promise<HttpAnswer> {
  return http(stack.gatewayUrl, "POST", `/api/daemon/runtimes/${runtimeId}/tasks/claim`, {
    token,
    body: {},
    headers: { "x-client-capabilities": TODAYS_CAPABILITIES },
  });
}

/** Registers `count` built-in runtimes of one daemon (each its own provider), as the daemon would. */
export async function registerDaemon(
  stack: Stack,
  ws: SeededWorkspace,
  options: { daemonId?: string; count?: number; token?: string; status?: "online" | "offline" } = {},
): Promise<{ daemonId: string; runtimeIds: string[] }> {
  const daemonId = options.daemonId ?? `daemon-${randomUUID().slice(0, 8)}`;
  const count = options.count ?? 1;
  const answer = await http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token: options.token ?? ws.member.pat,
    body: {
      workspace_id: ws.workspaceId,
      daemon_id: daemonId,
      device_name: "box",
      runtimes: Array.from({ length: count }, (_, i) => ({ name: `rt-${i}`, type: `provider-${i}`, version: "2.0", status: options.status ?? "online" })),
    },
  });
  if (answer.status !== 200) throw new Error(`register failed: ${answer.status} ${answer.text}`);
  return { daemonId, runtimeIds: (answer.json as { runtimes: Array<{ id: string }> }).runtimes.map((r) => r.id) };
}

/**
 * Makes a runtime look silent to liveness: online, last seen `agoSeconds`
 * ago. Waits until liveness has learned the runtime first, so a late
 * registration event does not bring it back.
 */
export async function lastSeenAgo(stack: Stack, runtimeId: string, agoSeconds: number): Promise<void> {
  await waitFor(
    "liveness to know the runtime",
    async () => (await query(stack.db.url, "SELECT 1 FROM liveness.runtime_liveness WHERE runtime_id = $1", [runtimeId])).length === 1,
  );
  await query(
    stack.db.url,
    "UPDATE liveness.runtime_liveness SET last_seen_at = now() - make_interval(secs => $2), status_changed_at = now() - make_interval(secs => $2) WHERE runtime_id = $1",
    [runtimeId, agoSeconds],
  );
}

/**
 * Moves a dispatched task back in time, as the original's tests do: it was
 * dispatched `dispatchedAgo` seconds ago, its lease ends `leaseIn` seconds
 * from now (negative: ended; null: none; undefined: unchanged).
 */
export async function dispatchedAgo(stack: Stack, taskId: string, dispatchedAgo: number, leaseIn?: number | null): Promise<void> {
  await query(
    stack.db.url,
    `UPDATE taskqueue.task SET dispatched_at = now() - make_interval(secs => $2),
       prepare_lease_expires_at = CASE WHEN $3::boolean THEN prepare_lease_expires_at
                                       WHEN $4::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $4::float8) END
     WHERE id = $1`,
    [taskId, dispatchedAgo, leaseIn === undefined, leaseIn ?? null],
  );
}

export interface TaskState {
  status: string;
  runtime_id: string;
  dispatched_at: Date | null;
  started_at: Date | null;
  prepare_lease_expires_at: Date | null;
  delivered_comment_ids: string[];
  failure_reason: string | null;
  error: string | null;
  lease_in_future: boolean | null;
  dispatched_seconds_ago: number | null;
}

export async function taskState(stack: Stack, taskId: string): Promise<TaskState> {
  const [row] = await query<TaskState>(
    stack.db.url,
    `SELECT status, runtime_id, dispatched_at, started_at, prepare_lease_expires_at, delivered_comment_ids::text[] AS delivered_comment_ids,
            failure_reason, error, prepare_lease_expires_at > now() AS lease_in_future,
            extract(epoch FROM now() - dispatched_at)::float8 AS dispatched_seconds_ago
     FROM taskqueue.task WHERE id = $1`,
    [taskId],
  );
  if (!row) throw new Error(`no task ${taskId}`);
  return row;
}

export async function tokenCount(stack: Stack, taskId: string): Promise<number> {
  const [row] = await query<{ count: number }>(stack.db.url, "SELECT count(*)::int AS count FROM taskqueue.task_token WHERE task_id = $1", [taskId]);
  return row!.count;
}
