import { PeriodicJob } from "@controlplane/lifecycle";
import { counter, histogram } from "@controlplane/metrics";
import type { LivenessDeps } from "./deps.js";
import * as repo from "./repository/runtimes.js";
import { raisePulse } from "./repository/sweep.js";

const flushed = counter({ name: "liveness_flushed_total", help: "last_seen_at values written by bulk flushes.", labelNames: [] as const });
const flushes = counter({ name: "liveness_flushes_total", help: "Bulk flush statements, by outcome.", labelNames: ["outcome"] as const });
const batchSize = histogram({
  name: "liveness_flush_batch_size",
  help: "Runtimes per bulk flush.",
  labelNames: [] as const,
  buckets: [1, 10, 100, 1_000, 10_000, 100_000],
});

/**
 * Writes every beat queued since the last tick in ONE UPDATE. A failed flush
 * drops its batch (the runtimes' next beats queue them again) and throws.
 * Rows the statement skipped went offline meanwhile (a sweep): their next
 * beat takes the flip path.
 */
export async function flushOnce(deps: LivenessDeps): Promise<number> {
  const taken = deps.state.takeFlush();
  if (taken.size === 0) return 0;
  const runtimeIds = [...taken.keys()];
  const seenAtMs = [...taken.values()];
  batchSize.observe(runtimeIds.length);
  try {
    const written = await repo.flushLastSeen(deps.pool, runtimeIds, seenAtMs);
    flushes.inc({ outcome: "ok" });
    flushed.inc(written);
    for (const [runtimeId, at] of taken) {
      const entry = deps.state.runtimes.get(runtimeId);
      if (entry) entry.lastFlushedAt = at;
    }
    return written;
  } catch (error) {
    flushes.inc({ outcome: "failed" });
    throw new Error(`last_seen flush of ${runtimeIds.length} runtimes failed; their next beats queue them again`, { cause: error });
  }
}

/**
 * Raises the fleet pulse to the newest beat this replica answered, if it has
 * a newer one: one tiny write per tick, whatever the fleet size, that tells
 * the sweeper (in whichever replica) that beats are arriving. A failed write
 * is retried next tick; meanwhile the pulse only looks older, which can
 * pause sweeps, never cause one.
 */
export async function recordPulse(deps: LivenessDeps): Promise<void> {
  const newest = deps.state.newestBeatAt;
  if (newest <= deps.state.pulseRecordedAt) return;
  try {
    await raisePulse(deps.pool, new Date(newest));
  } catch (error) {
    throw new Error("fleet pulse write failed; retried next tick", { cause: error });
  }
  deps.state.pulseRecordedAt = newest;
}

/**
 * One tick: the pulse first (it is small and the sweeper's silence rule
 * leans on it), then the beats, whether or not the pulse went through; a
 * failure of either fails the tick (counted and logged by the job).
 */
export async function flushTick(deps: LivenessDeps): Promise<number> {
  const pulse = await recordPulse(deps).then(
    () => undefined,
    (error: unknown) => error,
  );
  const written = await flushOnce(deps);
  if (pulse) throw pulse;
  return written;
}

/**
 * The flusher job: every FLUSH_TICK_MS on every replica (each flushes the
 * beats it answered), and once more on stop, so beats that arrived since the
 * last tick are not lost on shutdown.
 */
export function flusherJob(deps: LivenessDeps): PeriodicJob<number> {
  return new PeriodicJob({
    name: "liveness_flusher",
    intervalMs: deps.config.FLUSH_TICK_MS,
    finalPassOnStop: true,
    log: deps.log,
    run: () => flushTick(deps),
  });
}
