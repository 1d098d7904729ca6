import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

/**
 * Raises the fleet pulse to `beatAt` (never lowers it: replicas write their
 * own newest beat, in any order).
 */
export async function raisePulse(db: CommonQueryMethods, beatAt: Date): Promise<void> {
  await db.query(sql.unsafe`
    INSERT INTO liveness.fleet_pulse AS p (id, last_beat_at) VALUES (true, ${sql.timestamp(beatAt)})
    ON CONFLICT (id) DO UPDATE SET last_beat_at = greatest(p.last_beat_at, excluded.last_beat_at)`);
}

/** The newest beat any replica recorded; null before the first. */
export function readPulse(db: CommonQueryMethods) {
  return db.maybeOneFirst(sql.type(z.object({ last_beat_at: z.date() }))`SELECT last_beat_at FROM liveness.fleet_pulse`);
}

const sweepStateRow = z.object({ silent_since: z.date().nullable(), hold_until: z.date().nullable() });
export type SweepStateRow = z.infer<typeof sweepStateRow>;

/** The sweeper's memory; read and written only under the sweep lock. */
export function readSweepState(db: CommonQueryMethods) {
  return db.one(sql.type(sweepStateRow)`SELECT silent_since, hold_until FROM liveness.sweep_state`);
}

export async function writeSweepState(db: CommonQueryMethods, state: SweepStateRow): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE liveness.sweep_state
    SET silent_since = ${state.silent_since ? sql.timestamp(state.silent_since) : null},
        hold_until = ${state.hold_until ? sql.timestamp(state.hold_until) : null}`);
}
