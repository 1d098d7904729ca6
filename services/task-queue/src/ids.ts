import { NotFoundError, requireUuid } from "@controlplane/grpc";
import type { CommonQueryMethods } from "@controlplane/db";
import * as tasks from "./repository/tasks.js";

export const TASK_NOT_FOUND = "task not found";

// The one helper of the gRPC kit, re-exported: this service's modules take their id helpers from here.
export { requireUuid };

export function optionalUuid(value: string | undefined, field: string): string | null {
  return value === undefined || value === "" ? null : requireUuid(value, field);
}

/** The task, or NOT_FOUND "task not found" (only when it truly does not exist). */
export async function requireTask(db: CommonQueryMethods, taskId: string) {
  const row = await tasks.findTask(db, requireUuid(taskId, "task_id"));
  if (!row) throw new NotFoundError(TASK_NOT_FOUND);
  return row;
}
