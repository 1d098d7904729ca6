import { ADVISORY_LOCKS, tryTransactionLock, type DatabaseTransactionConnection } from "@controlplane/db";
import { PeriodicJob } from "@controlplane/lifecycle";
import { counter } from "@controlplane/metrics";
import { OfflineReason } from "@controlplane/proto/events/v1/events";
import { silenceWindowMs } from "./config.js";
import type { LivenessDeps } from "./deps.js";
import * as repo from "./repository/runtimes.js";
import * as sweepRepo from "./repository/sweep.js";

const swept = counter({ name: "liveness_swept_offline_total", help: "Runtimes the sweeper took offline.", labelNames: [] as const });
const vetoed = counter({
  name: "liveness_sweep_vetoed_total",
  help: "Stale runtimes kept online because the liveness store or a recent beat vouched for them.",
  labelNames: [] as const,
});
const skipped = counter({
  name: "liveness_sweep_skipped_total",
  help: "Sweeps that took nothing offline on purpose: the whole fleet was silent (fleet_silent), or beats had just resumed (resume_grace).",
  labelNames: ["reason"] as const,
});

/** Why a sweep left every runtime alone. */
export type SkipReason = "fleet_silent" | "resume_grace";

export interface SweepResult {
  /** False when another replica held the sweep lock. */
  swept: boolean;
  offline: string[];
  vetoed: number;
  capped: number;
  /** Set when the sweep deliberately took nothing offline. */
  skipped?: SkipReason;
  /** During a resume grace: when sweeping starts again. */
  holdUntil?: Date;
}

/** What the silence rule decided, and what to log once the transaction committed. */
interface Pause {
  reason: SkipReason;
  holdUntil?: Date;
  /** The silence began (or ended) with this sweep: logged once, not every sweep. */
  transition?: { kind: "silence_began"; online: number; lastBeatAt: Date | null } | { kind: "silence_ended"; holdUntil: Date };
}

/**
 * One sweep, under a transaction-scoped advisory lock so two replicas never
 * both act: runtimes online in the database but unseen past the stale
 * threshold, minus those the shared store or this replica's memory saw
 * beating, go offline (re-checked inside the UPDATE) with one
 * `runtime.offline` (reason stale) each, recorded in the same transaction.
 * At most SWEEP_MAX_FRACTION of the online fleet goes in one sweep, and none
 * while the whole fleet is silent or just after it came back (fleetPause).
 */
export async function sweepOnce(deps: LivenessDeps): Promise<SweepResult> {
  const now = Date.now();
  const cutoff = new Date(now - deps.config.STALE_THRESHOLD_MS);
  const { result, pause } = await deps.outbox.transaction(async (tx): Promise<{ result: SweepResult; pause?: Pause }> => {
    // One sweeper acts at a time, whatever the replica count.
    if (!(await tryTransactionLock(tx, ADVISORY_LOCKS.livenessSweeper))) return { result: { swept: false, offline: [], vetoed: 0, capped: 0 } };
    const online = await repo.countOnline(tx);
    const pause = await fleetPause(deps, tx, online, now);
    if (pause) return { result: { swept: true, offline: [], vetoed: 0, capped: 0, skipped: pause.reason, holdUntil: pause.holdUntil }, pause };
    return { result: await sweepStale(deps, tx, online, cutoff) };
  });
  for (const runtimeId of result.offline) {
    deps.state.markOffline(runtimeId);
    deps.broadcast.send("offline", runtimeId);
  }
  swept.inc(result.offline.length);
  vetoed.inc(result.vetoed);
  if (result.skipped) skipped.inc({ reason: result.skipped });
  if (pause) logTransition(deps, pause);
  if (result.capped > 0) deps.log.warn({ capped: result.capped }, "sweep capped: more runtimes went silent than one sweep may take offline");
  return result;
}

/** The sweep proper: stale candidates, minus the vouched-for, capped, offline with their events. */
async function sweepStale(deps: LivenessDeps, tx: DatabaseTransactionConnection, online: number, cutoff: Date): Promise<SweepResult> {
  const candidates = await repo.staleCandidates(tx, cutoff);
  if (candidates.length === 0) return { swept: true, offline: [], vetoed: 0, capped: 0 };
  const alive = await Promise.all(candidates.map((row) => vouchedFor(deps, row.runtime_id, cutoff.getTime())));
  const silent = candidates.filter((_, i) => !alive[i]);
  const limit = Math.max(1, Math.floor(online * deps.config.SWEEP_MAX_FRACTION));
  const chosen = silent.slice(0, limit);
  const rows =
    chosen.length > 0
      ? await repo.markStaleOffline(
          tx,
          chosen.map((row) => row.runtime_id),
          cutoff,
        )
      : [];
  await deps.outbox.writeMany(
    tx,
    rows.map((row) => ({
      type: "runtime.offline" as const,
      body: { runtimeId: row.runtime_id, reason: OfflineReason.OFFLINE_REASON_STALE, lastSeenAt: row.last_seen_at ?? undefined },
      meta: { workspaceId: row.workspace_id },
    })),
  );
  return { swept: true, offline: rows.map((row) => row.runtime_id), vetoed: candidates.length - silent.length, capped: silent.length - chosen.length };
}

/**
 * A fleet-wide silence is our outage (gateway, network), not the fleet's:
 * with at least SWEEP_SILENCE_MIN_FLEET runtimes online and no beat from any
 * of them within the silence window, nothing is swept. When beats come back,
 * the fleet gets one stale threshold of grace (as after a start), so runtimes
 * whose first beat after the outage is still on its way are not swept; those
 * that really died meanwhile go after it.
 *
 * "No beat from anyone" is read from the fleet pulse in the database (every
 * replica writes its newest beat there each flush tick), raised by this
 * replica's own newest beat. Not from last_seen_at: it lags a beat by up to a
 * flush interval per runtime, so a fleet falling silent together would look
 * stale a runtime at a time and be swept piecemeal before it all looked
 * silent. Not from the NATS KV store: its writes are thinned to one per
 * runtime per third of its TTL and not waited for (no bound the timing chain
 * checks), and a store outage would pause sweeps the database can still
 * decide. Not from memory alone: beats land on every replica, the sweeper
 * runs in one. The silence and the grace are kept in the database too,
 * because the next sweep may run in another replica.
 */
async function fleetPause(deps: LivenessDeps, tx: DatabaseTransactionConnection, online: number, now: number): Promise<Pause | null> {
  const state = await sweepRepo.readSweepState(tx);
  const pulse = await sweepRepo.readPulse(tx);
  const lastBeatAt = Math.max(pulse?.getTime() ?? 0, deps.state.newestBeatAt);
  const silent = online >= deps.config.SWEEP_SILENCE_MIN_FLEET && now - lastBeatAt > silenceWindowMs(deps.config);
  if (silent) {
    if (state.silent_since) return { reason: "fleet_silent" };
    await sweepRepo.writeSweepState(tx, { silent_since: new Date(now), hold_until: null });
    return { reason: "fleet_silent", transition: { kind: "silence_began", online, lastBeatAt: lastBeatAt > 0 ? new Date(lastBeatAt) : null } };
  }
  if (state.silent_since) {
    // Seen now, so the grace runs at least a threshold past the first beat back.
    const holdUntil = new Date(now + deps.config.STALE_THRESHOLD_MS);
    await sweepRepo.writeSweepState(tx, { silent_since: null, hold_until: holdUntil });
    return { reason: "resume_grace", holdUntil, transition: { kind: "silence_ended", holdUntil } };
  }
  if (state.hold_until && state.hold_until.getTime() > now) return { reason: "resume_grace", holdUntil: state.hold_until };
  return null;
}

function logTransition(deps: LivenessDeps, pause: Pause): void {
  const transition = pause.transition;
  if (transition?.kind === "silence_began") {
    deps.log.warn(
      { online: transition.online, last_beat_at: transition.lastBeatAt?.toISOString() ?? null },
      "the whole fleet is silent: taken for our own outage, not sweeping until beats resume",
    );
  } else if (transition?.kind === "silence_ended") {
    deps.log.warn({ hold_until: transition.holdUntil.toISOString() }, "beats resumed after a fleet-wide silence: sweeping again after one stale threshold");
  }
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
 * The sweeper job: every SWEEP_INTERVAL, starting only after a grace period
 * (one stale threshold by default): right after a start, beats have not had
 * time to come in, and a fleet that looks silent is more likely our own gap.
 * A sweep is one transaction, so it takes its lock inside it.
 */
export function sweeperJob(deps: LivenessDeps): PeriodicJob<SweepResult> {
  return new PeriodicJob({
    name: "liveness_sweeper",
    intervalMs: deps.config.SWEEP_INTERVAL_MS,
    startDelayMs: deps.config.SWEEP_GRACE_MS || deps.config.STALE_THRESHOLD_MS,
    log: deps.log,
    run: async (pass) => {
      const result = await sweepOnce(deps);
      if (!result.swept) pass.lockBusy();
      return result;
    },
    report: (result) => (result.offline.length > 0 ? { msg: "stale runtimes taken offline", count: result.offline.length } : undefined),
  });
}
