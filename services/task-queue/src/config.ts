import { address, CLAIM_LONG_POLL_MAX_MS, commonEnv, loadConfig, millis, port, positiveInt, retentionEnv, z } from "@controlplane/config";

export const taskQueueEnv = z.object({
  ...commonEnv,
  TASK_QUEUE_GRPC_PORT: port(50053),
  TASK_QUEUE_METRICS_PORT: port(9093),
  /** The registry: runtimes, agents and workspaces read at claim and enqueue. */
  REGISTRY_GRPC_ADDR: address("127.0.0.1:50051"),
  /** Liveness: whether a claiming runtime is online and when it was last seen. */
  LIVENESS_GRPC_ADDR: address("127.0.0.1:50054"),
  /**
   * A dispatched task not started within this is handed out again to the
   * same runtime (its claim answer was lost). Longer than the daemon's claim
   * timeout (30 s) plus its start timeout (30 s) plus slack.
   */
  CLAIM_RECOVERY_WINDOW_MS: millis(90_000),
  /**
   * A claimed task's prepare lease: while it runs the task is neither handed
   * out again nor timed out. Today's daemon extends it every 15 s (with a
   * 10 s timeout per call) until it starts the task, so 45 s survives two
   * lost extensions; a dead daemon's task is free again 45 s after its last.
   */
  PREPARE_LEASE_MS: millis(45_000),
  /**
   * A runtime is handed work only when online and seen within this. Longer
   * than the worst lag of liveness's flushed last_seen_at (flush interval
   * 60 s + heartbeat 15 s + flush tick 30 s = 105 s), so a live runtime is
   * never refused; a silent one stops getting work even while the sweeper
   * holds back (a fleet-wide silence, its start-up grace).
   */
  CLAIM_RUNTIME_FRESHNESS_MS: millis(150_000),
  /**
   * How long a runtime's liveness read is reused by claims (a claim loop
   * asks often): a runtime that went offline may still get work this long,
   * against the freshness window's 150 s.
   */
  CLAIM_LIVENESS_CACHE_TTL_MS: millis(5_000),
  /** Longest a claim may wait for work (opt-in per request); under every proxy's timeout. */
  CLAIM_LONG_POLL_MAX_MS: millis(CLAIM_LONG_POLL_MAX_MS),
  /** Dispatched but not started for this long, and no live prepare lease: failed with reason timeout. */
  DISPATCH_TIMEOUT_MS: millis(300_000),
  /** Running for this long (2.5 h): failed with reason timeout. */
  RUNNING_TIMEOUT_MS: millis(9_000_000),
  /** Queued for this long (2 h): failed with reason queued_expired. */
  QUEUED_TTL_MS: millis(7_200_000),
  /** How often the timeout sweeper runs (one replica at a time). */
  TASK_SWEEP_INTERVAL_MS: millis(30_000),
  /**
   * After a deregister, in-flight tasks get this long to be reported (the
   * daemon waits up to 30 s for them on shutdown) before they are failed.
   */
  DEREGISTER_GRACE_MS: millis(60_000),
  /** Lifetime of a task's mat_ token. */
  TASK_TOKEN_TTL_MS: millis(24 * 3600_000),
  /**
   * Finished tasks (completed, failed, cancelled), with their messages and
   * usage, are deleted this long (30 days) after they finished: longer than
   * any product view of a run's transcript is expected to need.
   */
  TASK_RETENTION_MS: millis(30 * 24 * 3600_000),
  /** Tokens are deleted this long after they expired (a day; an expired token is already refused). */
  TASK_TOKEN_RETENTION_MS: millis(24 * 3600_000),
  ...retentionEnv,
  /** How long runtime and workspace reads from the registry are reused on the claim path. */
  REGISTRY_CACHE_TTL_MS: millis(5_000),
  /** Attempts of a task (the first included) when the enqueuer does not say. */
  DEFAULT_MAX_ATTEMPTS: positiveInt(2),
  SHUTDOWN_GRACE_MS: millis(10_000),
});

export type TaskQueueConfig = z.infer<typeof taskQueueEnv>;

export function loadTaskQueueConfig(env: Record<string, string | undefined> = process.env): TaskQueueConfig {
  const config = loadConfig(taskQueueEnv, env);
  if (config.CLAIM_LONG_POLL_MAX_MS > CLAIM_LONG_POLL_MAX_MS) {
    throw new Error(`CLAIM_LONG_POLL_MAX_MS: at most ${CLAIM_LONG_POLL_MAX_MS} (the front proxy's claim timeout is set from it)`);
  }
  return config;
}
