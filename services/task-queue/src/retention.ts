import { ADVISORY_LOCKS, purgeInBatches, type PurgeResult } from "@controlplane/db";
import { PeriodicJob } from "@controlplane/lifecycle";
import type { TaskQueueDeps } from "./deps.js";
import * as repo from "./repository/retention.js";

export interface RetentionResult {
  messages: PurgeResult;
  usage: PurgeResult;
  tokens: PurgeResult;
  tasks: PurgeResult;
}

/**
 * One retention pass: messages and usage of tasks finished (completed,
 * failed, cancelled) more than TASK_RETENTION_MS ago, then those tasks;
 * tokens expired more than TASK_TOKEN_RETENTION_MS ago. Each table gets at
 * most RETENTION_MAX_BATCHES statements of RETENTION_BATCH_SIZE rows; what is
 * left waits for the next pass. Unfinished tasks are never touched.
 */
export async function purgeOnce(deps: Pick<TaskQueueDeps, "pool" | "config">): Promise<RetentionResult> {
  const { pool, config } = deps;
  const now = Date.now();
  const finishedBefore = new Date(now - config.TASK_RETENTION_MS);
  const expiredBefore = new Date(now - config.TASK_TOKEN_RETENTION_MS);
  const budget = { batchSize: config.RETENTION_BATCH_SIZE, maxBatches: config.RETENTION_MAX_BATCHES };
  const messages = await purgeInBatches("taskqueue.task_message", (limit) => repo.deleteMessagesOfFinished(pool, finishedBefore, limit), budget);
  const usage = await purgeInBatches("taskqueue.task_usage", (limit) => repo.deleteUsageOfFinished(pool, finishedBefore, limit), budget);
  const tokens = await purgeInBatches("taskqueue.task_token", (limit) => repo.deleteTokensExpiredBefore(pool, expiredBefore, limit), budget);
  const tasks = await purgeInBatches("taskqueue.task", (limit) => repo.deleteFinishedTasks(pool, finishedBefore, limit), budget);
  return { messages, usage, tokens, tasks };
}

/**
 * The retention job: every RETENTION_INTERVAL_MS, on one replica at a time
 * (a pass is many statements, so a session lock on its own connection).
 */
export function retentionJob(deps: Pick<TaskQueueDeps, "pool" | "config" | "log">): PeriodicJob<RetentionResult> {
  return new PeriodicJob({
    name: "taskqueue_retention",
    intervalMs: deps.config.RETENTION_INTERVAL_MS,
    log: deps.log,
    sessionLock: { lock: ADVISORY_LOCKS.taskRetention, databaseUrl: deps.config.DATABASE_URL },
    run: () => purgeOnce(deps),
    report: (result) => {
      const deleted = Object.fromEntries(Object.entries(result).map(([table, purged]) => [table, purged.deleted]));
      if (Object.values(deleted).every((count) => count === 0)) return undefined;
      return { msg: "old finished tasks deleted", deleted, done: Object.values(result).every((purged) => purged.done) };
    },
  });
}
