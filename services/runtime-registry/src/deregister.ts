import { InvalidArgumentError } from "@controlplane/grpc";
import type { DatabasePool, Outbox } from "@controlplane/db";
import { LIMITS } from "@controlplane/config";
import { parseUuid } from "@controlplane/ids";
import { OfflineReason } from "@controlplane/proto/events/v1/events";
import { callerOf, type Caller } from "./caller.js";
import * as runtimes from "./repository/runtimes.js";

/**
 * Marks runtimes offline on daemon shutdown. Every id is validated before any
 * write; ids that do not exist or that the caller may not touch are skipped
 * silently. Each runtime that was online publishes `runtime.offline`
 * (reason deregister), so its in-flight tasks are handled at once rather than
 * at some later sweep.
 */
export async function deregisterRuntimes(
  deps: { pool: DatabasePool; outbox: Outbox },
  request: { runtimeIds: string[]; callerWorkspaceId?: string; callerUserId?: string },
): Promise<string[]> {
  if (request.runtimeIds.length === 0) throw new InvalidArgumentError("runtime_ids is required");
  if (request.runtimeIds.length > LIMITS.DEREGISTER_RUNTIMES) {
    throw new InvalidArgumentError(`too many runtime_ids (at most ${LIMITS.DEREGISTER_RUNTIMES})`);
  }
  const ids = request.runtimeIds.map((id) => parseUuid(id));
  if (ids.some((id) => id === null)) throw new InvalidArgumentError("invalid runtime_ids");
  const scope = scopeOf(callerOf(request));
  if (scope === null) return [];
  return deps.outbox.transaction(async (tx) => {
    const rows = await runtimes.markOffline(tx, [...new Set(ids as string[])], scope);
    const flipped = rows.filter((row) => row.was_online);
    for (const row of flipped) {
      await deps.outbox.write(
        tx,
        "runtime.offline",
        { runtimeId: row.id, reason: OfflineReason.OFFLINE_REASON_DEREGISTER, lastSeenAt: row.last_seen_at ?? undefined },
        { workspaceId: row.workspace_id },
      );
    }
    return flipped.map((row) => row.id);
  });
}

function scopeOf(caller: Caller): runtimes.RuntimeScope | null {
  switch (caller.kind) {
    case "daemon":
      return { workspaceId: caller.workspaceId };
    case "user": {
      const userId = parseUuid(caller.userId);
      return userId ? { userId } : null;
    }
    case "internal":
      return "internal";
  }
}
