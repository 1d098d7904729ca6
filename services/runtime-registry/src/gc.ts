import type { DatabasePool, Outbox } from "@controlplane/db";
import { sql } from "@controlplane/db";
import type { Logger } from "@controlplane/log";
import { RuntimeDeletedReason } from "@controlplane/proto/events/v1/events";
import * as runtimes from "./repository/runtimes.js";

/** Rows removed per pass, so one pass never holds many locks. */
const BATCH = 500;
/** Advisory lock key: one replica collects at a time. */
const GC_LOCK_KEY = 0x52_47_43; // "RGC"

/**
 * Deletes runtimes offline for longer than `retentionMs` that no agent
 * (archived or not) refers to, announcing each as `runtime.deleted`. Returns
 * how many went; 0 when another replica holds the lock.
 */
export async function collectAbandonedRuntimes(outbox: Outbox, retentionMs: number): Promise<number> {
  return outbox.transaction(async (tx) => {
    const locked = await tx.oneFirst(sql.unsafe`SELECT pg_try_advisory_xact_lock(${GC_LOCK_KEY}) AS locked`);
    if (!locked) return 0;
    const removed = await runtimes.deleteAbandoned(tx, new Date(Date.now() - retentionMs), BATCH);
    for (const row of removed) {
      await outbox.write(
        tx,
        "runtime.deleted",
        { runtimeId: row.id, reason: RuntimeDeletedReason.RUNTIME_DELETED_REASON_GARBAGE_COLLECTED },
        { workspaceId: row.workspace_id },
      );
    }
    return removed.length;
  });
}

/** Runs the collector every `intervalMs` until stopped. */
export function startRuntimeGc(
  deps: { pool: DatabasePool; outbox: Outbox; log: Logger },
  options: { intervalMs: number; retentionMs: number },
): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = collectAbandonedRuntimes(deps.outbox, options.retentionMs)
      .then((count) => count > 0 && deps.log.info({ count }, "abandoned runtimes collected"))
      .catch((error: unknown) => deps.log.warn({ err: error }, "runtime gc failed"));
  }, options.intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
