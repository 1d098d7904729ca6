import { generateToken, hashToken, TOKEN_PREFIX } from "@controlplane/auth";
import { UnauthenticatedError } from "@controlplane/grpc";
import type { CommonQueryMethods, DatabasePool } from "@controlplane/db";
import * as repo from "./repository/tokens.js";

/**
 * Mints the task's mat_ token: bound to the task, agent, workspace and the
 * user the agent acts for; only its hash is stored; returned once.
 */
export async function mintTaskToken(
  db: CommonQueryMethods,
  binding: { taskId: string; agentId: string; workspaceId: string; userId: string },
  ttlMs: number,
): Promise<string> {
  const token = generateToken(TOKEN_PREFIX.task);
  await repo.insertTaskToken(db, { ...binding, hash: hashToken(token), expiresAt: new Date(Date.now() + ttlMs) });
  return token;
}

/** What a mat_ token grants; UNAUTHENTICATED "invalid token" when unknown, revoked or expired. */
export async function resolveTaskToken(pool: DatabasePool, token: string) {
  const row = token.startsWith(TOKEN_PREFIX.task) ? await repo.findLiveToken(pool, hashToken(token)) : null;
  if (!row) throw new UnauthenticatedError("invalid token");
  return { taskId: row.task_id, agentId: row.agent_id, workspaceId: row.workspace_id, userId: row.user_id, expiresAt: row.expires_at };
}
