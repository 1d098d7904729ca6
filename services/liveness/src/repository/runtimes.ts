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

/**
 * What the registry says about a runtime: its workspace, the status a
 * registration (or the registry's current row) gave it, when that status was
 * set, and when the registry last saw the daemon.
 */
export interface Registration {
  runtimeId: string;
  workspaceId: string;
  status: "online" | "offline";
  changedAt: Date;
  seenAt: Date;
}

/**
 * Records what the registry said, locked so the previous status is known.
 * Register writes the runtime `online` in the registry: liveness must count
 * it online too (seen at registration), or a runtime that never beats would
 * never be swept and the registry would say online forever. The status is
 * taken only when no newer change is recorded here (a beat's flip, a sweep, a
 * deregister processed first), so a late or redelivered event changes
 * nothing; a registration is still a sign of life for last_seen_at.
 */
export async function learn(tx: CommonQueryMethods, r: Registration): Promise<{ row: LivenessRow; previous: LivenessRow["status"] | null }> {
  const previous = await tx.maybeOneFirst(sql.type(z.object({ status: livenessRow.shape.status }))`
    SELECT status FROM liveness.runtime_liveness WHERE runtime_id = ${r.runtimeId} FOR UPDATE`);
  const seenAt = r.status === "online" ? sql.timestamp(r.seenAt) : null;
  const row = await tx.one(sql.type(livenessRow)`
    INSERT INTO liveness.runtime_liveness AS l (runtime_id, workspace_id, status, last_seen_at, status_changed_at)
    VALUES (${r.runtimeId}, ${r.workspaceId}, ${r.status}, ${seenAt}, ${sql.timestamp(r.changedAt)})
    ON CONFLICT (runtime_id) DO UPDATE SET
      workspace_id = excluded.workspace_id,
      status = CASE WHEN l.status_changed_at < excluded.status_changed_at THEN excluded.status ELSE l.status END,
      status_changed_at = CASE WHEN l.status_changed_at < excluded.status_changed_at AND l.status <> excluded.status
                               THEN excluded.status_changed_at ELSE l.status_changed_at END,
      last_seen_at = greatest(l.last_seen_at, excluded.last_seen_at)
    RETURNING ${columns}`);
  return { row, previous };
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

/**
 * Marks a runtime offline without an event (its daemon deregistered: the
 * registry announced it), unless a newer change is recorded (a registration
 * or a beat after the deregister, processed first). True when it changed.
 */
export async function markOfflineQuietly(db: CommonQueryMethods, runtimeId: string, deregisteredAt: Date): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    UPDATE liveness.runtime_liveness SET status = 'offline', status_changed_at = ${sql.timestamp(deregisteredAt)}
    WHERE runtime_id = ${runtimeId} AND status = 'online' AND status_changed_at < ${sql.timestamp(deregisteredAt)}`);
  return result.rowCount === 1;
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

/**
 * When a runtime was last known alive: its last flushed beat, or, for an
 * online row with none, when it came online (a registration without a beat is
 * measured from the registration, never swept at once).
 */
const lastAlive = sql.fragment`coalesce(last_seen_at, status_changed_at)`;

export function staleCandidates(db: CommonQueryMethods, cutoff: Date) {
  return db.any(sql.type(livenessRow)`
    SELECT ${columns} FROM liveness.runtime_liveness
    WHERE status = 'online' AND ${lastAlive} < ${sql.timestamp(cutoff)}
    ORDER BY ${lastAlive}`);
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
      AND ${lastAlive} < ${sql.timestamp(cutoff)}
    RETURNING ${columns}`);
}
