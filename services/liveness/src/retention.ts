import { ADVISORY_LOCKS, purgeInBatches, type PurgeResult } from "@controlplane/db";
import { PeriodicJob } from "@controlplane/lifecycle";
import type { LivenessDeps } from "./deps.js";
import * as actions from "./repository/actions.js";

/**
 * One retention pass: finished actions (completed, failed, timed out,
 * conflicting) created more than ACTION_RETENTION_MS ago are deleted, at most
 * RETENTION_BATCH_SIZE rows a statement and RETENTION_MAX_BATCHES statements
 * a pass. Pending and running actions are never touched.
 */
export async function purgeOnce(deps: Pick<LivenessDeps, "pool" | "config">): Promise<{ actions: PurgeResult }> {
  const { config } = deps;
  const cutoff = new Date(Date.now() - config.ACTION_RETENTION_MS);
  const budget = { batchSize: config.RETENTION_BATCH_SIZE, maxBatches: config.RETENTION_MAX_BATCHES };
  return { actions: await purgeInBatches("liveness.pending_action", (limit) => actions.deleteFinishedBefore(deps.pool, cutoff, limit), budget) };
}

/**
 * The retention job: every RETENTION_INTERVAL_MS, on one replica at a time
 * (a pass is many statements, so a session lock on its own connection).
 */
export function retentionJob(deps: Pick<LivenessDeps, "pool" | "config" | "log">): PeriodicJob<{ actions: PurgeResult }> {
  return new PeriodicJob({
    name: "liveness_retention",
    intervalMs: deps.config.RETENTION_INTERVAL_MS,
    log: deps.log,
    sessionLock: { lock: ADVISORY_LOCKS.livenessRetention, databaseUrl: deps.config.DATABASE_URL },
    run: () => purgeOnce(deps),
    report: ({ actions: purged }) => (purged.deleted > 0 ? { msg: "old finished actions deleted", deleted: purged.deleted, done: purged.done } : undefined),
  });
}
