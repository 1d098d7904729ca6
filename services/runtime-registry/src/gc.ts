import { ADVISORY_LOCKS, tryTransactionLock, type Outbox } from "@controlplane/db";
import { PeriodicJob } from "@controlplane/lifecycle";
import type { Logger } from "@controlplane/log";
import { RuntimeDeletedReason } from "@controlplane/proto/events/v1/events";
import * as runtimes from "./repository/runtimes.js";

/** Rows removed per pass, so one pass never holds many locks. */
const BATCH = 500;

/**
 * Deletes runtimes offline for longer than `retentionMs` that no agent
 * (archived or not) refers to, announcing each as `runtime.deleted`. Returns
 * how many went; null when another replica holds the lock.
 */
export async function collectAbandonedRuntimes(outbox: Outbox, retentionMs: number): Promise<number | null> {
  return outbox.transaction(async (tx) => {
    // One replica collects at a time; the deletes and their events commit together.
    if (!(await tryTransactionLock(tx, ADVISORY_LOCKS.runtimeGc))) return null;
    const removed = await runtimes.deleteAbandoned(tx, new Date(Date.now() - retentionMs), BATCH);
    for (const row of removed) {
      await outbox.write(
        tx,
        "runtime.deleted",
        { runtimeId: row.id, reason: RuntimeDeletedReason.RUNTIME_DELETED_REASON_GARBAGE_COLLECTED },
        { workspaceId: row.workspace_id },
      );
    }
    return removed.length;
  });
}

/** The collector job: every `intervalMs`, one replica at a time (a transaction lock inside the pass). */
export function runtimeGcJob(deps: { outbox: Outbox; log: Logger }, options: { intervalMs: number; retentionMs: number }): PeriodicJob<number | null> {
  return new PeriodicJob({
    name: "registry_runtime_gc",
    intervalMs: options.intervalMs,
    log: deps.log,
    run: async (pass) => {
      const count = await collectAbandonedRuntimes(deps.outbox, options.retentionMs);
      if (count === null) pass.lockBusy();
      return count;
    },
    report: (count) => (count ? { msg: "abandoned runtimes collected", count } : undefined),
  });
}
