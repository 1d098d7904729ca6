import type { DatabaseTransactionConnection } from "slonik";
import { sql } from "./sql.js";

/**
 * Marks `eventId` as processed by `consumer` inside `tx`. Returns false when
 * it already was: the caller then skips the work, which makes redelivered
 * events harmless. Commit or roll back together with the work itself.
 */
export async function claimEvent(
  tx: DatabaseTransactionConnection,
  schema: string,
  consumer: string,
  eventId: string,
): Promise<boolean> {
  const result = await tx.query(sql.unsafe`
    INSERT INTO ${sql.identifier([schema, "inbox"])} (consumer, event_id) VALUES (${consumer}, ${eventId})
    ON CONFLICT DO NOTHING`);
  return result.rowCount === 1;
}
