import { Coalescer, type CommonQueryMethods, type Outbox } from "@controlplane/db";
import { histogram } from "@controlplane/metrics";
import * as claims from "./repository/claims.js";
import type { TaskRow } from "./repository/rows.js";
import * as reports from "./repository/reports.js";
import * as tasks from "./repository/tasks.js";

/*
 * Claims, starts and completions go out together when they queue up. Each
 * was a statement of its own, a round trip and a commit, and under a
 * fleet's load they queue behind one another anyway; now those that arrive
 * while two of their kind are in flight share the next statement. An idle
 * service sends each at once, as before. Two in flight, not one, so that a
 * row held by a long statement (a sweep) does not hold up every call
 * behind it.
 */
const GROUPS = { maxBatch: 100, maxInFlight: 2 };

const batchSize = histogram({
  name: "taskqueue_transition_batch_size",
  help: "Calls per claim, start or completion statement (those that queued up go together).",
  labelNames: ["transition"] as const,
  buckets: [1, 2, 4, 8, 16, 32, 64, 100],
});

/**
 * One runtime's claim of at most one task (the seed-era daemon's, and the
 * first round of every per-runtime claim), keyed by the claim itself: two
 * claims of one runtime are two calls, each answered (see claims.claimEach).
 */
export function claimsInGroups(db: CommonQueryMethods, settings: claims.ClaimSettings): Coalescer<claims.SingleClaim, void, claims.ClaimTasksResult> {
  return new Coalescer(async (batch) => {
    batchSize.observe({ transition: "claim" }, batch.size);
    const calls = [...batch.keys()];
    const results = await claims.claimEach(db, calls, settings);
    return new Map(calls.flatMap((call, i) => (results[i] ? [[call, results[i]] as const] : [])));
  }, GROUPS);
}

/** dispatched | waiting_local_directory -> running, by task id. */
export function startsInGroups(db: CommonQueryMethods): Coalescer<string, void, TaskRow> {
  return new Coalescer((batch) => {
    batchSize.observe({ transition: "start" }, batch.size);
    return tasks.startMany(db, [...batch.keys()]);
  }, GROUPS);
}

/**
 * running -> completed for tasks whose event names this replica knows, by
 * task id, with their events in the same statement (see reports.completeMany).
 */
export function completionsInGroups(db: CommonQueryMethods, outbox: Outbox): Coalescer<string, reports.KnownCompletion, reports.CompletedRow> {
  return new Coalescer(async (batch) => {
    batchSize.observe({ transition: "complete" }, batch.size);
    const events = outbox.prepareKeyedInsert(
      [...batch].flatMap(([taskId, { known }]) => {
        const { workspaceId, agentId, runtimeId, issueId, chatSessionId, autopilotRunId } = known;
        const meta = { workspaceId };
        const task = { taskId, agentId, runtimeId, issueId, chatSessionId, autopilotRunId };
        const completed = { type: "task.completed" as const, body: { task }, meta, key: taskId };
        if (!issueId) return [completed];
        return [completed, { type: "issue.first_executed" as const, body: { issueId, taskId }, meta, key: taskId }];
      }),
      reports.COMPLETION_EVENT_HOLDS,
    );
    let done: Map<string, reports.CompletedRow> | undefined;
    try {
      done = await reports.completeMany(db, batch, events.insert);
      return done;
    } finally {
      events.settle((done?.size ?? 0) > 0);
    }
  }, GROUPS);
}
