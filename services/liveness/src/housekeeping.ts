import * as actions from "./repository/actions.js";
import { announce } from "./actions.js";
import type { LivenessDeps } from "./deps.js";

/** How often overdue actions time out, old ones go, and pending hints are rebuilt. */
const HOUSEKEEPING_INTERVAL_MS = 30_000;

/**
 * Actions a daemon never answered time out even if nobody reads them; finished
 * actions are deleted after the retention; and every replica rebuilds its
 * "may have mail" hints from the database, in case a broadcast was missed.
 */
export async function housekeepOnce(deps: LivenessDeps): Promise<void> {
  for (const kind of actions.KINDS) {
    // Each kind's timeouts commit with their events, or neither does.
    await deps.outbox.transaction(async (tx) => announce(deps, tx, await actions.expireOverdue(tx, kind)));
  }
  await actions.deleteOlderThan(deps.pool, new Date(Date.now() - deps.config.ACTION_RETENTION_MS));
  deps.state.replacePendingHints(await actions.runtimesWithPending(deps.pool));
}

export function startHousekeeping(deps: LivenessDeps): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = housekeepOnce(deps).catch((error: unknown) => deps.log.warn({ err: error }, "liveness housekeeping failed"));
  }, HOUSEKEEPING_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
