import { counter } from "@controlplane/metrics";

const deletedRows = counter({
  name: "retention_deleted_rows_total",
  help: "Rows deleted by the retention jobs, by schema-qualified table.",
  labelNames: ["table"] as const,
});

/** How much one retention pass may delete from one table. */
export interface RetentionBudget {
  /** Rows per DELETE statement: bounds the locks and WAL of one statement. */
  batchSize: number;
  /** Statements per table per pass: bounds the pass; the rest waits for the next one. */
  maxBatches: number;
}

export interface PurgeResult {
  deleted: number;
  batches: number;
  /** False when the budget ran out with rows possibly left. */
  done: boolean;
}

/**
 * Runs `deleteBatch(limit)` (one statement deleting at most `limit` rows,
 * answering how many it deleted) until a batch comes back short or the
 * budget is spent. Each statement commits on its own, so a long purge never
 * holds one long transaction, and a failure keeps what was already deleted.
 */
export async function purgeInBatches(table: string, deleteBatch: (limit: number) => Promise<number>, budget: RetentionBudget): Promise<PurgeResult> {
  let deleted = 0;
  for (let batches = 1; batches <= budget.maxBatches; batches++) {
    const count = await deleteBatch(budget.batchSize);
    deleted += count;
    deletedRows.inc({ table }, count);
    if (count < budget.batchSize) return { deleted, batches, done: true };
  }
  return { deleted, batches: budget.maxBatches, done: false };
}
