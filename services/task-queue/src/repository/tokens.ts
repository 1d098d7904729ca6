import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

export async function insertTaskToken(
  db: CommonQueryMethods,
  t: { hash: string; taskId: string; agentId: string; workspaceId: string; userId: string; expiresAt: Date },
) {
  await db.query(sql.unsafe`
    INSERT INTO taskqueue.task_token (token_hash, task_id, agent_id, workspace_id, user_id, expires_at)
    VALUES (${t.hash}, ${t.taskId}, ${t.agentId}, ${t.workspaceId}, ${t.userId}, ${sql.timestamp(t.expiresAt)})`);
}

/** Revokes every token of the task; returns how many there were. */
export async function deleteTaskTokens(db: CommonQueryMethods, taskId: string) {
  return (await db.query(sql.unsafe`DELETE FROM taskqueue.task_token WHERE task_id = ${taskId}`)).rowCount;
}

export async function deleteTokensOfTasks(db: CommonQueryMethods, taskIds: string[]) {
  if (taskIds.length === 0) return;
  await db.query(sql.unsafe`DELETE FROM taskqueue.task_token WHERE task_id = ANY(${sql.array(taskIds, "uuid")})`);
}

export function findLiveToken(db: CommonQueryMethods, hash: string) {
  return db.maybeOne(sql.type(z.object({ task_id: z.string(), agent_id: z.string(), workspace_id: z.string(), user_id: z.string(), expires_at: z.date() }))`
    SELECT task_id, agent_id, workspace_id, user_id, expires_at FROM taskqueue.task_token
    WHERE token_hash = ${hash} AND expires_at > now()`);
}
