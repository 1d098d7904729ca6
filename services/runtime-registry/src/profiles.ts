import { FailedPreconditionError, requireUuid } from "@controlplane/grpc";
import { isForeignKeyViolation, type DatabaseTransactionConnection, type Outbox } from "@controlplane/db";
import { RuntimeDeletedReason } from "@controlplane/proto/events/v1/events";
import * as agents from "./repository/agents.js";
import * as runtimes from "./repository/runtimes.js";

export const AGENTS_BOUND = "cannot delete runtime profile: active agents are still bound to its runtimes";

/**
 * Removes the runtime rows of a profile, in one transaction: refused while any
 * non-archived agent is bound to one of them; otherwise the archived agents
 * go, then the rows, each announced as `runtime.deleted`.
 */
export async function detachProfile(outbox: Outbox, workspaceId: string, profileId: string): Promise<number> {
  const ws = requireUuid(workspaceId, "workspace_id");
  const profile = requireUuid(profileId, "profile_id");
  try {
    return await outbox.transaction((tx) => detachInTransaction(tx, outbox, ws, profile));
  } catch (error) {
    // An agent was bound to one of the rows after they were counted.
    if (isForeignKeyViolation(error)) throw new FailedPreconditionError(AGENTS_BOUND);
    throw error;
  }
}

export async function detachInTransaction(tx: DatabaseTransactionConnection, outbox: Outbox, workspaceId: string, profileId: string): Promise<number> {
  const ids = [...(await runtimes.lockProfileRuntimes(tx, workspaceId, profileId))];
  if (ids.length === 0) return 0;
  if ((await agents.countActiveAgents(tx, ids)) > 0) throw new FailedPreconditionError(AGENTS_BOUND);
  await agents.deleteArchivedAgents(tx, ids);
  for (const id of ids) {
    await runtimes.deleteRuntime(tx, id);
    await outbox.write(tx, "runtime.deleted", { runtimeId: id, reason: RuntimeDeletedReason.RUNTIME_DELETED_REASON_PROFILE_DELETED }, { workspaceId });
  }
  return ids.length;
}
