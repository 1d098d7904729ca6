import type { DatabasePool } from "slonik";
import { z } from "zod";
import { sql } from "./sql.js";

/**
 * Moves parked events back into the outbox (same id, so JetStream still drops
 * a copy it already stored within its duplicate window; same created_at, so
 * they go out ahead of newer events). For an operator, after fixing what made
 * them unpublishable; a row that still cannot be published is parked again.
 * Returns the ids moved; an id already back in the outbox stays parked.
 */
export async function requeueParked(pool: DatabasePool, schema: string, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const outbox = sql.identifier([schema, "outbox"]);
  const parked = sql.identifier([schema, "outbox_parked"]);
  const moved = await pool.anyFirst(sql.type(z.object({ id: z.string() }))`
    WITH taken AS (
      DELETE FROM ${parked} AS p
      WHERE p.id = ANY(${sql.array(ids, "uuid")}) AND NOT EXISTS (SELECT 1 FROM ${outbox} AS o WHERE o.id = p.id)
      RETURNING id, event_type, payload, created_at, traceparent)
    INSERT INTO ${outbox} (id, event_type, payload, created_at, traceparent)
    SELECT id, event_type, payload, created_at, traceparent FROM taken
    RETURNING id`);
  return [...moved];
}
