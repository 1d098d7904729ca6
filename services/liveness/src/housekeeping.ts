import { PeriodicJob } from "@controlplane/lifecycle";
import * as actions from "./repository/actions.js";
import { announce } from "./actions.js";
import type { LivenessDeps } from "./deps.js";

/** How often overdue actions time out and pending hints are rebuilt. */
const HOUSEKEEPING_INTERVAL_MS = 30_000;

/**
 * Actions a daemon never answered time out even if nobody reads them, and
 * every replica rebuilds its "may have mail" hints from the database, in
 * case a broadcast was missed. Old finished actions go with the retention job.
 */
export async function housekeepOnce(deps: LivenessDeps): Promise<void> {
  for (const kind of actions.KINDS) {
    // Each kind's timeouts commit with their events, or neither does.
    await deps.outbox.transaction(async (tx) => announce(deps, tx, await actions.expireOverdue(tx, kind)));
  }
  deps.state.replacePendingHints(await actions.runtimesWithPending(deps.pool));
}

/**
 * The housekeeping job: on every replica, with no lock. The hints are each
 * replica's own memory, and a timeout is a guarded UPDATE (only pending or
 * running rows move), so two replicas timing out together announce each
 * action once.
 */
export function housekeepingJob(deps: LivenessDeps): PeriodicJob<void> {
  return new PeriodicJob({ name: "liveness_housekeeping", intervalMs: HOUSEKEEPING_INTERVAL_MS, log: deps.log, run: () => housekeepOnce(deps) });
}
