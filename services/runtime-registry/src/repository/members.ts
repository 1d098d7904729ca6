import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

const memberRow = z.object({
  workspace_id: z.string(),
  user_id: z.string(),
  role: z.enum(["owner", "admin", "member"]),
  created_at: z.date(),
});

export type MemberRow = z.infer<typeof memberRow>;
export type Role = MemberRow["role"];

/** Adds the member, or changes the role of an existing one. */
export function upsertMember(db: CommonQueryMethods, workspaceId: string, userId: string, role: Role) {
  return db.one(sql.type(memberRow)`
    INSERT INTO registry.member (workspace_id, user_id, role) VALUES (${workspaceId}, ${userId}, ${role})
    ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role
    RETURNING workspace_id, user_id, role, created_at`);
}

export function findMember(db: CommonQueryMethods, workspaceId: string, userId: string) {
  return db.maybeOne(sql.type(memberRow)`
    SELECT workspace_id, user_id, role, created_at FROM registry.member
    WHERE workspace_id = ${workspaceId} AND user_id = ${userId}`);
}

export async function deleteMember(db: CommonQueryMethods, workspaceId: string, userId: string) {
  const result = await db.query(sql.unsafe`
    DELETE FROM registry.member WHERE workspace_id = ${workspaceId} AND user_id = ${userId}`);
  return result.rowCount === 1;
}
