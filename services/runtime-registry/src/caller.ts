import { parseUuid } from "@controlplane/ids";

/**
 * Who is asking, as the gateway established it: a daemon token (one
 * workspace), a user (reaches the workspaces they are a member of), or a
 * trusted internal caller.
 */
export type Caller = { kind: "daemon"; workspaceId: string } | { kind: "user"; userId: string } | { kind: "internal"; ownerId: string | null };

export function callerOf(fields: { callerWorkspaceId?: string; callerUserId?: string; ownerId?: string }): Caller {
  if (fields.callerWorkspaceId !== undefined) return { kind: "daemon", workspaceId: fields.callerWorkspaceId };
  if (fields.callerUserId !== undefined) return { kind: "user", userId: fields.callerUserId };
  return { kind: "internal", ownerId: fields.ownerId ? parseUuid(fields.ownerId) : null };
}
