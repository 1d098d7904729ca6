import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

const livenessRow = z.object({
  runtime_id: z.string(),
  workspace_id: z.string(),
  status: z.enum(["online", "offline"]),
  last_seen_at: z.date().nullable(),
  status_changed_at: z.date(),
});

export type LivenessRow = z.infer<typeof livenessRow>;

const columns = sql.fragment`runtime_id, workspace_id, status, last_seen_at, status_changed_at`;

/** Every known runtime (loaded once at start into memory). */
export function loadAll(db: CommonQueryMethods) {
  return db.any(sql.type(livenessRow)`SELECT ${columns} FROM liveness.runtime_liveness`);
}

export function find(db: CommonQueryMethods, runtimeId: string) {
  return db.maybeOne(sql.type(livenessRow)`SELECT ${columns} FROM liveness.runtime_liveness WHERE runtime_id = ${runtimeId}`);
}

/** Learns a runtime (from a registry event or lookup); an existing row keeps its state. */
export function remember(db: CommonQueryMethods, runtimeId: string, workspaceId: string) {
  return db.one(sql.type(livenessRow)`
    INSERT INTO liveness.runtime_liveness (runtime_id, workspace_id) VALUES (${runtimeId}, ${workspaceId})
    ON CONFLICT (runtime_id) DO UPDATE SET workspace_id = excluded.workspace_id
    RETURNING ${columns}`);
}

export async function forget(db: CommonQueryMethods, runtimeId: string) {
  await db.query(sql.unsafe`DELETE FROM liveness.runtime_liveness WHERE runtime_id = ${runtimeId}`);
}

/** offline -> online with last_seen_at now; null when it already was online. */
export function markOnline(db: CommonQueryMethods, runtimeId: string) {
  return db.maybeOne(sql.type(livenessRow)`
    UPDATE liveness.runtime_liveness
    SET status = 'online', last_seen_at = now(), status_changed_at = clock_timestamp()
    WHERE runtime_id = ${runtimeId} AND status = 'offline'
    RETURNING ${columns}`);
}

/** Marks runtimes offline without an event (their daemon deregistered: the registry announced it). */
export async function markOfflineQuietly(db: CommonQueryMethods, runtimeId: string) {
  await db.query(sql.unsafe`
    UPDATE liveness.runtime_liveness SET status = 'offline', status_changed_at = clock_timestamp()
    WHERE runtime_id = ${runtimeId} AND status = 'online'`);
}

/**
 * The bulk flush: one statement for every runtime seen since the last tick.
 * Only last_seen_at changes (HOT-friendly) and only for online rows; a row a
 * sweeper just took offline is left for its next beat to bring back.
 */
export async function flushLastSeen(db: CommonQueryMethods, runtimeIds: string[], seenAtMs: number[]) {
  if (runtimeIds.length === 0) return 0;
  // Two comma-joined texts instead of two array parameters: a fleet's flush
  // is tens of thousands of values, and per-element array encoding would
  // hold the event loop (and every beat behind it) for a noticeable time.
  const result = await db.query(sql.unsafe`
    UPDATE liveness.runtime_liveness r SET last_seen_at = greatest(r.last_seen_at, to_timestamp(b.seen_ms / 1000.0))
    FROM unnest(string_to_array(${runtimeIds.join(",")}, ',')::uuid[],
                string_to_array(${seenAtMs.join(",")}, ',')::float8[]) AS b(runtime_id, seen_ms)
    WHERE r.runtime_id = b.runtime_id AND r.status = 'online'`);
  return result.rowCount;
}

export function staleCandidates(db: CommonQueryMethods, cutoff: Date) {
  return db.any(sql.type(livenessRow)`
    SELECT ${columns} FROM liveness.runtime_liveness
    WHERE status = 'online' AND (last_seen_at IS NULL OR last_seen_at < ${sql.timestamp(cutoff)})
    ORDER BY last_seen_at NULLS FIRST`);
}

export function countOnline(db: CommonQueryMethods) {
  return db.oneFirst(sql.type(z.object({ count: z.number() }))`
    SELECT count(*)::int AS count FROM liveness.runtime_liveness WHERE status = 'online'`);
}

/**
 * Takes the given runtimes offline, re-checking online and stale inside the
 * statement so a beat flushed meanwhile vetoes it.
 */
export function markStaleOffline(db: CommonQueryMethods, runtimeIds: string[], cutoff: Date) {
  return db.any(sql.type(livenessRow)`
    UPDATE liveness.runtime_liveness
    SET status = 'offline', status_changed_at = clock_timestamp()
    WHERE runtime_id = ANY(${sql.array(runtimeIds, "uuid")}) AND status = 'online'
      AND (last_seen_at IS NULL OR last_seen_at < ${sql.timestamp(cutoff)})
    RETURNING ${columns}`);
}
