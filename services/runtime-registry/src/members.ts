import { InvalidArgumentError, NotFoundError } from "@controlplane/grpc";
import { isForeignKeyViolation, type DatabasePool } from "@controlplane/db";
import { parseUuid } from "@controlplane/ids";
import { MemberRole, type Member } from "@controlplane/proto/registry/v1/identity";
import * as repo from "./repository/members.js";
import { requireUuid, WORKSPACE_NOT_FOUND } from "./workspaces.js";

const ROLE_TO_PROTO = { owner: MemberRole.MEMBER_ROLE_OWNER, admin: MemberRole.MEMBER_ROLE_ADMIN, member: MemberRole.MEMBER_ROLE_MEMBER };

function roleFromProto(role: MemberRole): repo.Role {
  switch (role) {
    case MemberRole.MEMBER_ROLE_OWNER:
      return "owner";
    case MemberRole.MEMBER_ROLE_ADMIN:
      return "admin";
    case MemberRole.MEMBER_ROLE_MEMBER:
      return "member";
    default:
      throw new InvalidArgumentError("role must be owner, admin or member");
  }
}

export async function addMember(pool: DatabasePool, workspaceId: string, userId: string, role: MemberRole): Promise<Member> {
  const ws = requireUuid(workspaceId, "workspace_id");
  const user = requireUuid(userId, "user_id");
  try {
    return toProto(await repo.upsertMember(pool, ws, user, roleFromProto(role)));
  } catch (error) {
    if (isForeignKeyViolation(error)) throw new NotFoundError(WORKSPACE_NOT_FOUND);
    throw error;
  }
}

export async function removeMember(pool: DatabasePool, workspaceId: string, userId: string): Promise<void> {
  const ws = requireUuid(workspaceId, "workspace_id");
  const user = requireUuid(userId, "user_id");
  if (!(await repo.deleteMember(pool, ws, user))) throw new NotFoundError("member not found");
}

/** NOT_FOUND "workspace not found" when either id is not a UUID or there is no such membership. */
export async function getMembership(pool: DatabasePool, workspaceId: string, userId: string): Promise<Member> {
  const ws = parseUuid(workspaceId);
  const user = parseUuid(userId);
  const row = ws && user ? await repo.findMember(pool, ws, user) : null;
  if (!row) throw new NotFoundError(WORKSPACE_NOT_FOUND);
  return toProto(row);
}

function toProto(row: repo.MemberRow): Member {
  return { workspaceId: row.workspace_id, userId: row.user_id, role: ROLE_TO_PROTO[row.role], createdAt: row.created_at };
}
