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
 * drops its batch: the runtimes' next beats queue them again. Rows the
 * statement skipped went offline meanwhile (a sweep): their next beat takes
 * the flip path.
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
    deps.log.warn({ err: error, runtimes: runtimeIds.length }, "last_seen flush failed; the next beats queue these again");
    return 0;
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
    deps.state.pulseRecordedAt = newest;
  } catch (error) {
    deps.log.warn({ err: error }, "fleet pulse write failed; retried next tick");
  }
}

/** One tick: the pulse first (it is small and the sweeper's silence rule leans on it), then the beats. */
async function tick(deps: LivenessDeps): Promise<void> {
  await recordPulse(deps);
  await flushOnce(deps);
}

export function startFlusher(deps: LivenessDeps): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() => tick(deps));
  }, deps.config.FLUSH_TICK_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
      // Beats that arrived since the last tick are not lost on shutdown.
      await tick(deps);
    },
  };
}
