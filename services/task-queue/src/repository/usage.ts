import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

export interface UsageEntry {
  provider: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** Ticks of 1e-10 USD; absent, zero or negative: unknown. */
  costUsdTicks?: number;
}

/** Replaces (does not add to) the counts and cost of one (task, provider, model); an unknown cost is stored NULL. */
export async function upsertUsage(db: CommonQueryMethods, taskId: string, u: UsageEntry) {
  const cost = u.costUsdTicks !== undefined && u.costUsdTicks > 0 ? u.costUsdTicks : null;
  await db.query(sql.unsafe`
    INSERT INTO taskqueue.task_usage
      (task_id, provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd_ticks)
    VALUES (${taskId}, ${u.provider}, ${u.model}, ${u.inputTokens}, ${u.outputTokens}, ${u.cacheReadTokens}, ${u.cacheWriteTokens}, ${cost})
    ON CONFLICT (task_id, provider, model) DO UPDATE SET
      input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
      cache_read_tokens = excluded.cache_read_tokens, cache_write_tokens = excluded.cache_write_tokens,
      cost_usd_ticks = excluded.cost_usd_ticks, updated_at = now()`);
}

const totals = z.object({
  total_input_tokens: z.number(),
  total_output_tokens: z.number(),
  total_cache_read_tokens: z.number(),
  total_cache_write_tokens: z.number(),
  task_count: z.number(),
});

/** Sums over an issue's tasks; task_count counts tasks that have usage rows. */
export function issueUsage(db: CommonQueryMethods, workspaceId: string, issueId: string) {
  return db.one(sql.type(totals)`
    SELECT coalesce(sum(u.input_tokens), 0)::int8 AS total_input_tokens,
           coalesce(sum(u.output_tokens), 0)::int8 AS total_output_tokens,
           coalesce(sum(u.cache_read_tokens), 0)::int8 AS total_cache_read_tokens,
           coalesce(sum(u.cache_write_tokens), 0)::int8 AS total_cache_write_tokens,
           count(DISTINCT u.task_id)::int AS task_count
    FROM taskqueue.task_usage u JOIN taskqueue.task t ON t.id = u.task_id
    WHERE t.workspace_id = ${workspaceId} AND t.issue_id = ${issueId}`);
}
