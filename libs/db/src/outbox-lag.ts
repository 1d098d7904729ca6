import type { DatabasePool, IdentifierSqlToken } from "slonik";
import { z } from "zod";
import { lagSeconds, parkedNow } from "./outbox-metrics.js";
import { sql } from "./sql.js";

const measured = z.object({ lag: z.number(), parked: z.number(), waiting: z.boolean() });

/**
 * One statement over a schema's outbox: sets outbox_lag_seconds (age of the
 * oldest row still in the outbox; parked rows are elsewhere) and
 * outbox_parked, and answers whether any row waits (rows another replica's
 * relay holds included), so an idle relay's poll needs nothing more.
 */
export async function measureOutbox(pool: DatabasePool, tables: { outbox: IdentifierSqlToken; parked: IdentifierSqlToken }, schema: string): Promise<boolean> {
  const { lag, parked, waiting } = await pool.one(sql.type(measured)`
    SELECT
      coalesce(greatest(0, extract(epoch FROM now() - (SELECT min(created_at) FROM ${tables.outbox}))), 0)::float8 AS lag,
      (SELECT count(*) FROM ${tables.parked})::int AS parked,
      EXISTS (SELECT 1 FROM ${tables.outbox}) AS waiting`);
  lagSeconds.set({ schema }, lag);
  parkedNow.set({ schema }, parked);
  return waiting;
}
