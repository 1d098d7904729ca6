import { sql } from "@controlplane/db";
import { counter } from "@controlplane/metrics";
import { OfflineReason } from "@controlplane/proto/events/v1/events";
import type { LivenessDeps } from "./deps.js";
import * as repo from "./repository/runtimes.js";

const swept = counter({ name: "liveness_swept_offline_total", help: "Runtimes the sweeper took offline.", labelNames: [] as const });
const vetoed = counter({
  name: "liveness_sweep_vetoed_total",
  help: "Stale runtimes kept online because the liveness store or a recent beat vouched for them.",
  labelNames: [] as const,
});

/** Advisory lock: one sweeper acts at a time, whatever the replica count. */
const SWEEP_LOCK = [0x4c56, 1] as const;

export interface SweepResult {
  /** False when another replica held the sweep lock. */
  swept: boolean;
  offline: string[];
  vetoed: number;
  capped: number;
}

/**
 * One sweep, under a transaction-scoped advisory lock so two replicas never
 * both act: runtimes online in the database but unseen past the stale
 * threshold, minus those the shared store or this replica's memory saw
 * beating, go offline (re-checked inside the UPDATE) with one
 * `runtime.offline` (reason stale) each, recorded in the same transaction.
 * At most SWEEP_MAX_FRACTION of the online fleet goes in one sweep.
 */
export async function sweepOnce(deps: LivenessDeps): Promise<SweepResult> {
  const cutoff = new Date(Date.now() - deps.config.STALE_THRESHOLD_MS);
  const result = await deps.outbox.transaction(async (tx) => {
    const locked = await tx.oneFirst(sql.unsafe`SELECT pg_try_advisory_xact_lock(${SWEEP_LOCK[0]}, ${SWEEP_LOCK[1]}) AS locked`);
    if (!locked) return { swept: false, offline: [], vetoed: 0, capped: 0 };
    const candidates = await repo.staleCandidates(tx, cutoff);
    if (candidates.length === 0) return { swept: true, offline: [], vetoed: 0, capped: 0 };
    const alive = await Promise.all(candidates.map((row) => vouchedFor(deps, row.runtime_id, cutoff.getTime())));
    const silent = candidates.filter((_, i) => !alive[i]);
    const limit = Math.max(1, Math.floor((await repo.countOnline(tx)) * deps.config.SWEEP_MAX_FRACTION));
    const chosen = silent.slice(0, limit);
    const rows = chosen.length > 0 ? await repo.markStaleOffline(tx, chosen.map((row) => row.runtime_id), cutoff) : [];
    await deps.outbox.writeMany(
      tx,
      rows.map((row) => ({
        type: "runtime.offline" as const,
        body: { runtimeId: row.runtime_id, reason: OfflineReason.OFFLINE_REASON_STALE, lastSeenAt: row.last_seen_at ?? undefined },
        meta: { workspaceId: row.workspace_id },
      })),
    );
    return { swept: true, offline: rows.map((row) => row.runtime_id), vetoed: candidates.length - silent.length, capped: silent.length - chosen.length };
  });
  for (const runtimeId of result.offline) {
    deps.state.markOffline(runtimeId);
    deps.broadcast.send("offline", runtimeId);
  }
  swept.inc(result.offline.length);
  vetoed.inc(result.vetoed);
  if (result.capped > 0) deps.log.warn({ capped: result.capped }, "sweep capped: more runtimes went silent than one sweep may take offline");
  return result;
}

/** A beat seen here, or a live key in the shared store, vouches for a runtime. */
async function vouchedFor(deps: LivenessDeps, runtimeId: string, cutoff: number): Promise<boolean> {
  if ((deps.state.runtimes.get(runtimeId)?.lastBeatAt ?? 0) > cutoff) return true;
  try {
    return await deps.store.isAlive(runtimeId);
  } catch {
    // Without the store the database decides, as it always can.
    return false;
  }
}

/**
 * Sweeps every SWEEP_INTERVAL, starting only after a grace period (one stale
 * threshold by default): right after a start, beats have not had time to
 * come in, and a fleet that looks silent is more likely our own gap.
 */
export function startSweeper(deps: LivenessDeps): { stop(): Promise<void> } {
  const grace = deps.config.SWEEP_GRACE_MS || deps.config.STALE_THRESHOLD_MS;
  const startedAt = Date.now();
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (Date.now() - startedAt < grace) return;
    running = running
      .then(() => sweepOnce(deps))
      .then((result) => {
        if (result.offline.length > 0) deps.log.info({ count: result.offline.length }, "stale runtimes taken offline");
      })
      .catch((error: unknown) => deps.log.warn({ err: error }, "sweep failed"));
  }, deps.config.SWEEP_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
