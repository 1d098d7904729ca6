import { InvalidArgumentError, NotFoundError, requireUuid } from "@controlplane/grpc";
import { isForeignKeyViolation, type DatabasePool, type DatabaseTransactionConnection, type Outbox } from "@controlplane/db";
import { parseUuid } from "@controlplane/ids";
import { MemberRole, type Member } from "@controlplane/proto/registry/v1/identity";
import * as repo from "./repository/members.js";
import { WORKSPACE_NOT_FOUND } from "./workspaces.js";

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

/**
 * Adds a member, or changes an existing member's role. Either change is
 * announced as `member.added` (with `previous_role` for a role change) in
 * the same transaction; the same role again changes nothing and announces
 * nothing.
 */
export async function addMember(outbox: Outbox, workspaceId: string, userId: string, role: MemberRole): Promise<Member> {
  const ws = requireUuid(workspaceId, "workspace_id");
  const user = requireUuid(userId, "user_id");
  const wanted = roleFromProto(role);
  try {
    return toProto(await outbox.transaction((tx) => stateMembership(outbox, tx, ws, user, wanted)));
  } catch (error) {
    if (isForeignKeyViolation(error)) throw new NotFoundError(WORKSPACE_NOT_FOUND);
    throw error;
  }
}

/** Tries of AddMember's insert-or-change before it gives up on a membership removed and re-added under it. */
const MEMBERSHIP_ATTEMPTS = 3;

/**
 * Makes the user a member with `role` inside `tx`, recording member.added
 * when that changed anything. An existing membership is locked before its
 * role is compared, so of two concurrent changes each names the role it
 * really replaced. A membership removed between the insert and the lock is
 * inserted again.
 */
async function stateMembership(outbox: Outbox, tx: DatabaseTransactionConnection, ws: string, user: string, role: repo.Role): Promise<repo.MemberRow> {
  for (let attempt = 1; attempt <= MEMBERSHIP_ATTEMPTS; attempt++) {
    const added = await repo.insertMember(tx, ws, user, role);
    if (added) {
      await recordAdded(outbox, tx, added, undefined);
      return added;
    }
    const current = await repo.lockMember(tx, ws, user);
    if (!current) continue;
    if (current.role === role) return current;
    const changed = await repo.setRole(tx, ws, user, role);
    await recordAdded(outbox, tx, changed, current.role);
    return changed;
  }
  throw new Error(`membership of ${user} in ${ws} kept disappearing under AddMember`);
}

/** member.added for a membership that started (previous undefined) or changed role. */
async function recordAdded(outbox: Outbox, tx: DatabaseTransactionConnection, row: repo.MemberRow, previous: repo.Role | undefined): Promise<void> {
  await outbox.write(
    tx,
    "member.added",
    { userId: row.user_id, role: ROLE_TO_PROTO[row.role], previousRole: previous === undefined ? undefined : ROLE_TO_PROTO[previous] },
    { workspaceId: row.workspace_id },
  );
}

/** Removes a membership and announces `member.removed` (with the role it had) in the same transaction. */
export async function removeMember(outbox: Outbox, workspaceId: string, userId: string): Promise<void> {
  const ws = requireUuid(workspaceId, "workspace_id");
  const user = requireUuid(userId, "user_id");
  await outbox.transaction(async (tx) => {
    const removed = await repo.deleteMember(tx, ws, user);
    if (!removed) throw new NotFoundError("member not found");
    await outbox.write(tx, "member.removed", { userId: removed.user_id, role: ROLE_TO_PROTO[removed.role] }, { workspaceId: removed.workspace_id });
  });
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
