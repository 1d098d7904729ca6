import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

const workItemRow = z.object({
  kind: z.string(),
  id: z.string(),
  workspace_id: z.string(),
  status: z.string(),
  updated_at: z.date(),
  completed_at: z.date().nullable(),
});

export type WorkItemRow = z.infer<typeof workItemRow>;

/** Records the newest state the product reported (older reports do not win). */
export async function upsertWorkItem(db: CommonQueryMethods, w: WorkItemRow) {
  await db.query(sql.unsafe`
    INSERT INTO taskqueue.work_item (kind, id, workspace_id, status, updated_at, completed_at)
    VALUES (${w.kind}, ${w.id}, ${w.workspace_id}, ${w.status}, ${sql.timestamp(w.updated_at)},
            ${w.completed_at ? sql.timestamp(w.completed_at) : null})
    ON CONFLICT (kind, id) DO UPDATE SET
      workspace_id = excluded.workspace_id, status = excluded.status,
      updated_at = excluded.updated_at, completed_at = excluded.completed_at
    WHERE work_item.updated_at <= excluded.updated_at`);
}

export function findWorkItem(db: CommonQueryMethods, kind: string, id: string) {
  return db.maybeOne(sql.type(workItemRow)`
    SELECT kind, id, workspace_id, status, updated_at, completed_at FROM taskqueue.work_item
    WHERE kind = ${kind} AND id = ${id}`);
}
