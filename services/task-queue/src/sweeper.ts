import { sql } from "@controlplane/db";
import type { TaskQueueDeps } from "./deps.js";
import { failTasksWhere } from "./lifecycle.js";
import * as tasks from "./repository/tasks.js";

/** Advisory lock key: one replica sweeps at a time. */
const SWEEP_LOCK = [21585, 1] as const;
/** Expired queued tasks failed per pass, oldest first. */
const EXPIRE_BATCH = 500;

/**
 * One pass of the timeout sweeper: dispatched too long (never started, and
 * no live prepare lease) or running too long -> failed "task timed out"
 * (timeout); queued too long -> failed "task expired in queue"
 * (queued_expired). Each goes through the failure pipeline (tokens revoked,
 * retry when allowed, task.failed).
 */
export async function sweepOnce(deps: TaskQueueDeps): Promise<{ timedOut: number; expired: number } | null> {
  return deps.pool.connect(async (connection) => {
    const locked = await connection.oneFirst(sql.unsafe`SELECT pg_try_advisory_lock(${SWEEP_LOCK[0]}, ${SWEEP_LOCK[1]}) AS locked`);
    if (!locked) return null;
    try {
      const now = Date.now();
      const { config } = deps;
      const dispatched = await failTasksWhere(deps, tasks.dispatchedBefore(new Date(now - config.DISPATCH_TIMEOUT_MS)), "task timed out", "timeout");
      const running = await failTasksWhere(deps, tasks.runningBefore(new Date(now - config.RUNNING_TIMEOUT_MS)), "task timed out", "timeout");
      const expired = await failTasksWhere(
        deps,
        tasks.queuedBefore(new Date(now - config.QUEUED_TTL_MS)),
        "task expired in queue",
        "queued_expired",
        EXPIRE_BATCH,
      );
      await wakeForRedelivery(deps, connection, now);
      return { timedOut: dispatched.failed.length + running.failed.length, expired: expired.failed.length };
    } finally {
      await connection.query(sql.unsafe`SELECT pg_advisory_unlock(${SWEEP_LOCK[0]}, ${SWEEP_LOCK[1]})`);
    }
  });
}

/**
 * Tasks whose claim answer became "lost" since the previous pass (past the
 * recovery window and past their prepare lease) are handed out again by the
 * next claim: wake their runtimes' daemons now rather than at their next poll.
 */
async function wakeForRedelivery(deps: TaskQueueDeps, db: Parameters<typeof tasks.runtimesWithRedeliveryDue>[0], now: number) {
  const { CLAIM_RECOVERY_WINDOW_MS: window, TASK_SWEEP_INTERVAL_MS: interval } = deps.config;
  const due = await tasks.runtimesWithRedeliveryDue(db, new Date(now - interval), new Date(now), window);
  for (const runtimeId of due) deps.wake.notify(runtimeId);
}

export function startSweeper(deps: TaskQueueDeps): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = sweepOnce(deps)
      .then((result) => {
        if (result && result.timedOut + result.expired > 0) deps.log.info(result, "task timeouts swept");
      })
      .catch((error: unknown) => deps.log.warn({ err: error }, "task sweep failed"));
  }, deps.config.TASK_SWEEP_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
