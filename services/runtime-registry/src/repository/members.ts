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

/** Adds the membership; null when the user is a member already (nothing written). */
export function insertMember(db: CommonQueryMethods, workspaceId: string, userId: string, role: Role) {
  return db.maybeOne(sql.type(memberRow)`
    INSERT INTO registry.member (workspace_id, user_id, role) VALUES (${workspaceId}, ${userId}, ${role})
    ON CONFLICT (workspace_id, user_id) DO NOTHING
    RETURNING workspace_id, user_id, role, created_at`);
}

/** The membership, locked until the transaction ends (a role change reads the role it replaces). */
export function lockMember(db: CommonQueryMethods, workspaceId: string, userId: string) {
  return db.maybeOne(sql.type(memberRow)`
    SELECT workspace_id, user_id, role, created_at FROM registry.member
    WHERE workspace_id = ${workspaceId} AND user_id = ${userId}
    FOR UPDATE`);
}

export function setRole(db: CommonQueryMethods, workspaceId: string, userId: string, role: Role) {
  return db.one(sql.type(memberRow)`
    UPDATE registry.member SET role = ${role} WHERE workspace_id = ${workspaceId} AND user_id = ${userId}
    RETURNING workspace_id, user_id, role, created_at`);
}

export function findMember(db: CommonQueryMethods, workspaceId: string, userId: string) {
  return db.maybeOne(sql.type(memberRow)`
    SELECT workspace_id, user_id, role, created_at FROM registry.member
    WHERE workspace_id = ${workspaceId} AND user_id = ${userId}`);
}

/** Deletes the membership and returns what it was; null when there was none. */
export function deleteMember(db: CommonQueryMethods, workspaceId: string, userId: string) {
  return db.maybeOne(sql.type(memberRow)`
    DELETE FROM registry.member WHERE workspace_id = ${workspaceId} AND user_id = ${userId}
    RETURNING workspace_id, user_id, role, created_at`);
}
