import { TtlCache } from "@controlplane/cache";
import type { TaskRef } from "@controlplane/proto/events/v1/events";
import type { TaskRow } from "./repository/rows.js";
import { taskRef } from "./task-shape.js";

/** A task's event name and workspace, as this replica last saw them. */
export interface KnownTask {
  ref: TaskRef;
  workspaceId: string;
}

/** Tasks this replica handed out or started and has not yet seen finish. */
const MAX_KNOWN = 200_000;

/**
 * What this replica knows of the tasks it claimed or started: enough to
 * encode their terminal events before the transition runs, so the
 * transition and its events go to Postgres as one statement. Only a hint:
 * the statement checks every field against the row (a task moved to another
 * runtime meanwhile does not match, and takes the path that reads the row
 * first); a task another replica started is simply not known here.
 */
export class KnownTasks {
  private readonly tasks: TtlCache<KnownTask>;

  /** `ttlMs`: how long a task may stay in flight (the running timeout). */
  constructor(ttlMs: number) {
    this.tasks = new TtlCache(ttlMs, MAX_KNOWN);
  }

  remember(row: TaskRow): void {
    this.tasks.set(row.id, { ref: taskRef(row), workspaceId: row.workspace_id });
  }

  get(taskId: string): KnownTask | undefined {
    return this.tasks.get(taskId);
  }

  forget(taskId: string): void {
    this.tasks.delete(taskId);
  }
}
