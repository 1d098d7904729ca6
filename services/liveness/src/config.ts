import { address, commonEnv, loadConfig, millis, port, positiveInt, retentionEnv, z } from "@controlplane/config";

/**
 * The timing chain. A live runtime beats every HEARTBEAT_INTERVAL; its
 * last_seen_at reaches the database at most FLUSH_INTERVAL late, plus one
 * FLUSH_TICK; the sweeper calls it stale only past STALE_THRESHOLD, so
 *   FLUSH_INTERVAL + HEARTBEAT_INTERVAL + FLUSH_TICK < STALE_THRESHOLD
 * (60 + 15 + 30 = 105 < 150 s by default). The liveness key lives
 * LIVENESS_TTL after a beat: shorter than STALE_THRESHOLD, so the store never
 * says "alive" after the database says "dead", and several beats long.
 */
export const livenessEnv = z.object({
  ...commonEnv,
  LIVENESS_GRPC_PORT: port(50054),
  LIVENESS_METRICS_PORT: port(9094),
  REGISTRY_GRPC_ADDR: address("127.0.0.1:50051"),
  /** How often daemons beat (theirs: 15 s); only used to check the chain. */
  HEARTBEAT_INTERVAL_MS: millis(15_000),
  /** A beat refreshes last_seen_at in the database at most this often per runtime. */
  FLUSH_INTERVAL_MS: millis(60_000),
  /** Beats are written in one bulk UPDATE this often. */
  FLUSH_TICK_MS: millis(30_000),
  /** Lifetime of a runtime's key in the liveness store after a beat. */
  LIVENESS_TTL_MS: millis(90_000),
  /** Silent this long (in the database and the store), a runtime goes offline. */
  STALE_THRESHOLD_MS: millis(150_000),
  /** How often the sweeper looks for stale runtimes (one replica at a time). */
  SWEEP_INTERVAL_MS: millis(30_000),
  /** After becoming the sweeper, wait this long before the first sweep (0: one stale threshold). */
  SWEEP_GRACE_MS: z.coerce.number().int().min(0).default(0),
  /** At most this share of online runtimes goes offline in one sweep (a mass silence is more likely ours). */
  SWEEP_MAX_FRACTION: z.coerce.number().gt(0).lte(1).default(0.5),
  /**
   * A fleet at least this large that falls silent all at once (no beat from
   * any runtime, see silenceWindowMs) is not swept: so many daemons do not
   * die together, the gap is ours (gateway, network, load balancer), and
   * sweeping would fail every running task. Below it a total silence can be
   * real (one laptop with a few runtimes closed its lid) and is swept as usual.
   */
  SWEEP_SILENCE_MIN_FLEET: positiveInt(5),
  /** Beats slower than this are logged with their stage timings. */
  SLOW_HEARTBEAT_MS: millis(500),
  /** Bound on the "anything pending?" probe of a beat. */
  PENDING_PROBE_TIMEOUT_MS: millis(1_000),
  /** Skill imports popped per beat for daemons that take a batch. */
  IMPORT_BATCH: positiveInt(10),
  /** Finished actions are deleted this long after they were created (by the retention job). */
  ACTION_RETENTION_MS: millis(10 * 60_000),
  ...retentionEnv,
  SHUTDOWN_GRACE_MS: millis(10_000),
});

export type LivenessConfig = z.infer<typeof livenessEnv>;

export function loadLivenessConfig(env: Record<string, string | undefined> = process.env): LivenessConfig {
  const config = loadConfig(livenessEnv, env);
  checkTimingChain(config);
  return config;
}

/** Refuses a configuration whose timing chain could call a live runtime dead. */
export function checkTimingChain(c: LivenessConfig): void {
  const chain = c.FLUSH_INTERVAL_MS + c.HEARTBEAT_INTERVAL_MS + c.FLUSH_TICK_MS;
  if (chain >= c.STALE_THRESHOLD_MS) {
    throw new Error(
      `invalid configuration: FLUSH_INTERVAL_MS + HEARTBEAT_INTERVAL_MS + FLUSH_TICK_MS (${chain}) must be below STALE_THRESHOLD_MS (${c.STALE_THRESHOLD_MS})`,
    );
  }
  if (c.LIVENESS_TTL_MS >= c.STALE_THRESHOLD_MS) {
    throw new Error(`invalid configuration: LIVENESS_TTL_MS (${c.LIVENESS_TTL_MS}) must be below STALE_THRESHOLD_MS (${c.STALE_THRESHOLD_MS})`);
  }
  if (c.LIVENESS_TTL_MS <= 2 * c.HEARTBEAT_INTERVAL_MS) {
    throw new Error(`invalid configuration: LIVENESS_TTL_MS (${c.LIVENESS_TTL_MS}) must outlast two heartbeats (${2 * c.HEARTBEAT_INTERVAL_MS})`);
  }
  const silence = silenceWindowMs(c);
  if (silence <= c.FLUSH_TICK_MS + c.HEARTBEAT_INTERVAL_MS) {
    throw new Error(
      `invalid configuration: STALE_THRESHOLD_MS - FLUSH_INTERVAL_MS - HEARTBEAT_INTERVAL_MS (${silence}) must exceed FLUSH_TICK_MS + HEARTBEAT_INTERVAL_MS (${c.FLUSH_TICK_MS + c.HEARTBEAT_INTERVAL_MS}), or a live fleet could look silent`,
    );
  }
}

/**
 * With no beat from any runtime for this long, the fleet counts as silent.
 * Both ends of the window are set by the timing chain:
 * - at most: a runtime can be swept once it has been silent for
 *   STALE_THRESHOLD - FLUSH_INTERVAL (its last_seen_at lags its last beat by
 *   under a flush interval), and the fleet's last beat may come a heartbeat
 *   after its own; the silence must be seen before the first of the fleet
 *   can be swept, or an outage would still take a share of it per sweep;
 * - at least: the fleet pulse is written every FLUSH_TICK and some runtime
 *   beats every HEARTBEAT_INTERVAL, so a beating fleet's newest beat is
 *   never older than FLUSH_TICK + HEARTBEAT_INTERVAL (checked at start).
 * With the defaults: 150 - 60 - 15 = 75 s, against 30 + 15 = 45 s.
 */
export function silenceWindowMs(c: LivenessConfig): number {
  return c.STALE_THRESHOLD_MS - c.FLUSH_INTERVAL_MS - c.HEARTBEAT_INTERVAL_MS;
}

/** Pending and running timeouts per action kind, with the texts the daemon and users see. */
export const ACTION_TIMEOUTS = {
  update: {
    pendingMs: 120_000,
    runningMs: 150_000,
    pending: "daemon did not respond within 120 seconds",
    running: "update did not complete within 150 seconds",
  },
  model_list: { pendingMs: 30_000, runningMs: 60_000, pending: "daemon did not respond within 30 seconds", running: "daemon did not finish within 60 seconds" },
  local_skills: {
    pendingMs: 180_000,
    runningMs: 60_000,
    pending: "daemon did not respond within 3 minutes",
    running: "daemon did not finish within 60 seconds",
  },
  local_skill_import: {
    pendingMs: 180_000,
    runningMs: 60_000,
    pending: "daemon did not respond within 3 minutes",
    running: "daemon did not finish within 60 seconds",
  },
} as const;

export type ActionKindName = keyof typeof ACTION_TIMEOUTS;
