import { InternalError, InvalidArgumentError, NotFoundError, requireUuid } from "@controlplane/grpc";
import { counter, histogram } from "@controlplane/metrics";
import type { HeartbeatRequest, HeartbeatResponse } from "@controlplane/proto/liveness/v1/liveness";
import { deliverPending } from "./actions.js";
import type { LivenessDeps } from "./deps.js";
import * as repo from "./repository/runtimes.js";

const beats = counter({ name: "liveness_heartbeats_total", help: "Heartbeats answered.", labelNames: ["outcome"] as const });
const flips = counter({ name: "liveness_online_flips_total", help: "Runtimes brought back online by a beat.", labelNames: [] as const });
const beatSeconds = histogram({ name: "liveness_heartbeat_seconds", help: "Time to answer a heartbeat.", labelNames: [] as const });

/**
 * One beat. In the common case nothing touches the database: the beat is
 * noted in memory, mirrored (at most every third of the TTL, without waiting
 * for the ack) to the shared store, and queued for the next bulk flush when
 * the database copy is older than the flush interval. A runtime that was offline is flipped online at
 * once (and `runtime.online` recorded). Pending actions are popped last.
 * A beat that came over a daemon socket is noted as such, so that an
 * operator can tell which runtimes hold a socket.
 */
export async function heartbeat(deps: LivenessDeps, beat: HeartbeatRequest): Promise<HeartbeatResponse> {
  const { runtimeId: rawRuntimeId, supportsBatchImport: batchImports, viaSocket } = beat;
  const started = performance.now();
  // Where a slow beat spent its time (ms), kept as numbers: the log line's
  // object is built only for a slow beat, not on each of thousands a second.
  let resolveMs = 0;
  let storeMs = 0;
  let dbMs = 0;
  let pendingMs = 0;
  let outcome = "ok";
  let runtimeId = rawRuntimeId;
  try {
    if (!rawRuntimeId) throw new InvalidArgumentError("runtime_id is required");
    runtimeId = requireUuid(rawRuntimeId, "runtime_id");
    let at = performance.now();
    // A runtime in memory (nearly every beat) is used as is: awaiting it
    // would cost each beat a promise and a microtask turn for nothing.
    const entry = deps.state.runtimes.get(runtimeId) ?? (await deps.directory.resolve(runtimeId));
    resolveMs = performance.now() - at;

    const now = Date.now();
    entry.lastBeatAt = now;
    if (viaSocket) entry.lastSocketBeatAt = now;
    deps.state.newestBeatAt = now;
    at = performance.now();
    if (now - entry.storeWrittenAt >= deps.config.LIVENESS_TTL_MS / 3) {
      const started = deps.store.touch(runtimeId, (error) => {
        // The store could not vouch for this runtime: make sure the database does.
        entry.storeWrittenAt = 0;
        if (entry.status === "online") deps.state.queueFlush(runtimeId, now);
        deps.log.warn({ err: error, runtime_id: runtimeId }, "liveness store write failed");
      });
      if (started) entry.storeWrittenAt = now;
    }
    storeMs = performance.now() - at;

    at = performance.now();
    if (entry.status !== "online") {
      const flipped = await flipOnline(deps, runtimeId, entry.workspaceId);
      entry.status = "online";
      entry.statusChangedAt = Date.now();
      // Already online in the database (a registration this replica had not
      // heard of): nothing wrote last_seen_at, so the flush must.
      if (flipped) entry.lastFlushedAt = now;
      else deps.state.queueFlush(runtimeId, now);
    } else if (now - entry.lastFlushedAt >= deps.config.FLUSH_INTERVAL_MS) {
      deps.state.queueFlush(runtimeId, now);
    }
    dbMs = performance.now() - at;

    // Nothing can be pending without a hint (nearly every beat): no await either.
    if (deps.state.pendingVersion(runtimeId) === undefined) return { pendingLocalSkillImports: [], workspaceId: entry.workspaceId };
    at = performance.now();
    const pending = await deliverPending(deps, runtimeId, batchImports);
    pendingMs = performance.now() - at;
    return { pendingLocalSkillImports: [], ...pending, workspaceId: entry.workspaceId };
  } catch (error) {
    outcome = error instanceof NotFoundError ? "not_found" : error instanceof InvalidArgumentError ? "invalid" : "error";
    throw error;
  } finally {
    const ms = performance.now() - started;
    beats.inc({ outcome });
    beatSeconds.observe(ms / 1000);
    if (ms >= deps.config.SLOW_HEARTBEAT_MS) {
      const stages = { resolve: tenths(resolveMs), store: tenths(storeMs), db: tenths(dbMs), pending: tenths(pendingMs) };
      deps.log.info({ runtime_id: runtimeId, ms: Math.round(ms), stages, outcome }, "slow heartbeat");
    }
  }
}

const tenths = (ms: number) => Math.round(ms * 10) / 10;

/**
 * offline -> online, written at once with its event; false when the row was
 * online already. A failure answers "heartbeat failed".
 */
async function flipOnline(deps: LivenessDeps, runtimeId: string, workspaceId: string): Promise<boolean> {
  try {
    const flipped = await deps.outbox.transaction(async (tx) => {
      const row = await repo.markOnline(tx, runtimeId);
      if (!row) return false;
      await deps.outbox.write(tx, "runtime.online", { runtimeId, lastSeenAt: row.last_seen_at ?? undefined }, { workspaceId });
      return true;
    });
    if (flipped) flips.inc();
    return flipped;
  } catch (error) {
    deps.log.error({ err: error, runtime_id: runtimeId }, "online flip failed");
    throw new InternalError("heartbeat failed");
  }
}
