import { sql, type CommonQueryMethods } from "@controlplane/db";

/** A task in one of these states never changes again (a retry is a new task). */
const FINISHED = sql.fragment`('completed', 'failed', 'cancelled')`;

/**
 * Each statement deletes at most `limit` rows and answers how many it
 * deleted; the retention job repeats it within its budget. A finished task
 * goes last, once its messages and usage are gone, so deleting it never
 * cascades into an unbounded number of rows.
 */

/** Messages of tasks finished before `cutoff`. */
export async function deleteMessagesOfFinished(db: CommonQueryMethods, cutoff: Date, limit: number): Promise<number> {
  return (
    await db.query(sql.unsafe`
    DELETE FROM taskqueue.task_message WHERE id IN (
      SELECT m.id FROM taskqueue.task t JOIN taskqueue.task_message m ON m.task_id = t.id
      WHERE t.status IN ${FINISHED} AND t.completed_at < ${sql.timestamp(cutoff)}
      LIMIT ${limit})`)
  ).rowCount;
}

/** Usage rows of tasks finished before `cutoff`. */
export async function deleteUsageOfFinished(db: CommonQueryMethods, cutoff: Date, limit: number): Promise<number> {
  return (
    await db.query(sql.unsafe`
    DELETE FROM taskqueue.task_usage WHERE id IN (
      SELECT u.id FROM taskqueue.task t JOIN taskqueue.task_usage u ON u.task_id = t.id
      WHERE t.status IN ${FINISHED} AND t.completed_at < ${sql.timestamp(cutoff)}
      LIMIT ${limit})`)
  ).rowCount;
}

/**
 * Tokens that expired before `cutoff`, whatever their task's state: an
 * expired token already answers "invalid token" like an unknown one.
 * (Finished tasks have none: every terminal transition deletes them.)
 */
export async function deleteTokensExpiredBefore(db: CommonQueryMethods, cutoff: Date, limit: number): Promise<number> {
  return (
    await db.query(sql.unsafe`
    DELETE FROM taskqueue.task_token WHERE id IN (
      SELECT id FROM taskqueue.task_token WHERE expires_at < ${sql.timestamp(cutoff)} LIMIT ${limit})`)
  ).rowCount;
}

/**
 * Tasks finished before `cutoff` that have no messages or usage left (those
 * still being purged wait for the next pass), oldest first; rows another
 * transaction holds are skipped.
 */
export async function deleteFinishedTasks(db: CommonQueryMethods, cutoff: Date, limit: number): Promise<number> {
  return (
    await db.query(sql.unsafe`
    DELETE FROM taskqueue.task WHERE id IN (
      SELECT t.id FROM taskqueue.task t
      WHERE t.status IN ${FINISHED} AND t.completed_at < ${sql.timestamp(cutoff)}
        AND NOT EXISTS (SELECT 1 FROM taskqueue.task_message m WHERE m.task_id = t.id)
        AND NOT EXISTS (SELECT 1 FROM taskqueue.task_usage u WHERE u.task_id = t.id)
      ORDER BY t.completed_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)`)
  ).rowCount;
}
