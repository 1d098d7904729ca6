import type { DatabaseTransactionConnection, Outbox } from "@controlplane/db";
import type { TaskRow } from "./repository/rows.js";
import * as tokens from "./repository/tokens.js";
import { taskRef } from "./task-shape.js";

/** After tasks were cancelled in `tx`: revoke their tokens and record task.cancelled for each. */
export async function afterCancellations(tx: DatabaseTransactionConnection, outbox: Outbox, cancelled: readonly TaskRow[]): Promise<void> {
  await tokens.deleteTokensOfTasks(
    tx,
    cancelled.map((row) => row.id),
  );
  for (const row of cancelled) {
    await outbox.write(tx, "task.cancelled", { task: taskRef(row) }, { workspaceId: row.workspace_id });
  }
}
