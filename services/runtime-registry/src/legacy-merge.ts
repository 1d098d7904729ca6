import type { DatabaseTransactionConnection, Outbox } from "@controlplane/db";
import { RuntimeDeletedReason } from "@controlplane/proto/events/v1/events";
import * as agents from "./repository/agents.js";
import * as runtimes from "./repository/runtimes.js";

/**
 * Folds the rows a daemon registered under its old hostname-derived ids into
 * its new built-in runtime: for each legacy id (trimmed, blanks skipped), every
 * built-in row of the same workspace and provider whose daemon id matches
 * case-insensitively. Agents move here, in the same transaction; tasks belong
 * to the task queue and move on the `runtime.merged` event (durable, so a
 * task queue that is down catches up). The first merged id is recorded.
 */
export async function mergeLegacyRuntimes(
  tx: DatabaseTransactionConnection,
  outbox: Outbox,
  target: { id: string; workspaceId: string; provider: string },
  legacyIds: string[],
): Promise<string[]> {
  const merged = new Set<string>();
  for (const raw of legacyIds) {
    const legacyId = raw.trim();
    if (!legacyId) continue;
    const matches = await runtimes.lockLegacyMatches(tx, target.workspaceId, target.provider, legacyId, target.id);
    for (const oldId of matches) {
      if (merged.has(oldId)) continue;
      await agents.moveAgents(tx, oldId, target.id);
      if (!(await runtimes.deleteRuntime(tx, oldId))) continue;
      merged.add(oldId);
      await runtimes.recordLegacyId(tx, target.id, legacyId);
      const meta = { workspaceId: target.workspaceId };
      await outbox.write(tx, "runtime.merged", { fromRuntimeId: oldId, toRuntimeId: target.id, legacyDaemonId: legacyId }, meta);
      await outbox.write(tx, "runtime.deleted", { runtimeId: oldId, reason: RuntimeDeletedReason.RUNTIME_DELETED_REASON_MERGED }, meta);
    }
  }
  return [...merged];
}
