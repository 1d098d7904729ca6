import { ADVISORY_LOCKS } from "@controlplane/db";
import { PeriodicJob } from "@controlplane/lifecycle";
import type { TaskQueueDeps } from "./deps.js";
import { failTasksWhere } from "./lifecycle.js";
import * as tasks from "./repository/tasks.js";

/** Expired queued tasks failed per pass, oldest first. */
const EXPIRE_BATCH = 500;

export interface SweepResult {
  timedOut: number;
  expired: number;
}

/**
 * One pass of the timeout sweeper: dispatched too long (never started, and
 * no live prepare lease) or running too long -> failed "task timed out"
 * (timeout); queued too long -> failed "task expired in queue"
 * (queued_expired). Each goes through the failure pipeline (tokens revoked,
 * retry when allowed, task.failed). Takes no lock: the job holds it.
 */
export async function sweepOnce(deps: TaskQueueDeps): Promise<SweepResult> {
  const now = Date.now();
  const { config } = deps;
  const dispatched = await failTasksWhere(deps, tasks.dispatchedBefore(new Date(now - config.DISPATCH_TIMEOUT_MS)), "task timed out", "timeout");
  const running = await failTasksWhere(deps, tasks.runningBefore(new Date(now - config.RUNNING_TIMEOUT_MS)), "task timed out", "timeout");
  const expired = await failTasksWhere(deps, tasks.queuedBefore(new Date(now - config.QUEUED_TTL_MS)), "task expired in queue", "queued_expired", EXPIRE_BATCH);
  await wakeForRedelivery(deps, now);
  return { timedOut: dispatched.failed.length + running.failed.length, expired: expired.failed.length };
}

/**
 * Tasks whose claim answer became "lost" since the previous pass (past the
 * recovery window and past their prepare lease) are handed out again by the
 * next claim: wake their runtimes' daemons now rather than at their next poll.
 */
async function wakeForRedelivery(deps: TaskQueueDeps, now: number) {
  const { CLAIM_RECOVERY_WINDOW_MS: window, TASK_SWEEP_INTERVAL_MS: interval } = deps.config;
  const due = await tasks.runtimesWithRedeliveryDue(deps.pool, new Date(now - interval), new Date(now), window);
  for (const runtimeId of due) deps.wake.notify(runtimeId);
}

/**
 * The sweeper job: every TASK_SWEEP_INTERVAL_MS, on one replica at a time.
 * A pass is several transactions (one per failure batch), so the lock is a
 * session lock on a connection of its own, held for the pass.
 */
export function sweeperJob(deps: TaskQueueDeps): PeriodicJob<SweepResult> {
  return new PeriodicJob({
    name: "taskqueue_sweeper",
    intervalMs: deps.config.TASK_SWEEP_INTERVAL_MS,
    log: deps.log,
    sessionLock: { lock: ADVISORY_LOCKS.taskSweeper, databaseUrl: deps.config.DATABASE_URL },
    run: () => sweepOnce(deps),
    report: (result) => (result.timedOut + result.expired > 0 ? { msg: "task timeouts swept", ...result } : undefined),
  });
}
