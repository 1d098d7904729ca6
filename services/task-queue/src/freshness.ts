import { ReadThrough, TtlCache } from "@controlplane/cache";
import { currentScope, hasCode, status, type PromiseClient } from "@controlplane/grpc";
import type { Logger } from "@controlplane/log";
import type { GetRuntimeLivenessResponse, LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import type { Runtime } from "@controlplane/proto/registry/v1/registry";

/** What liveness said of a runtime; null when it does not know it (the registry does not either). */
type Liveness = GetRuntimeLivenessResponse | null;

/**
 * The claim's runtime gate (contract §13.3): a runtime is handed work, fresh
 * or re-delivered, only while it is online and was seen within the
 * freshness window. Liveness owns both facts: its status, and the newest of
 * its flushed last_seen_at and the beats its replica saw (the status change
 * when the runtime was never seen). Reads are reused, since a daemon's claim
 * loop asks about the same runtimes again and again: a "no" for `cacheTtlMs`,
 * a "yes" up to six times as long but never past the moment it would turn
 * into a "no" (the last beat leaving the window), and either is dropped at
 * once when liveness or the registry says the runtime went offline, came
 * online or is gone (`forget`, on their events).
 *
 * When liveness cannot answer, the gate falls back to the registry's
 * status and lets the claim through: the daemon asking is alive, and
 * stopping every claim during a liveness outage would idle the whole
 * fleet, while a task handed to a runtime that is in fact gone is
 * re-delivered or timed out as usual.
 */
export class RuntimeFreshness {
  private readonly reads: ReadThrough<Liveness>;

  constructor(
    liveness: PromiseClient<typeof LivenessServiceService>,
    private readonly windowMs: number,
    cacheTtlMs: number,
    private readonly log: Logger,
  ) {
    this.reads = new ReadThrough(
      new TtlCache(cacheTtlMs * POSITIVE_TTL_FACTOR),
      async (runtimeId) => {
        try {
          return await liveness.getRuntimeLiveness({ runtimeId });
        } catch (error) {
          if (hasCode(error, status.NOT_FOUND)) return null;
          throw error;
        }
      },
      { notAfter: (read) => (verdict(read, windowMs) ? new Date(seenAt(read!) + windowMs) : new Date(Date.now() + cacheTtlMs)) },
    );
  }

  /** Liveness or the registry said the runtime's state changed: the next claim asks again. */
  forget(runtimeId: string): void {
    this.reads.forget(runtimeId);
  }

  /** True when `runtime` may be handed work now. */
  async fresh(runtime: Runtime, now = Date.now()): Promise<boolean> {
    let liveness: Liveness;
    try {
      liveness = await this.reads.get(runtime.id);
    } catch (error) {
      // The claim's caller left (or its deadline passed): nothing to fall back for, and nothing wrong with liveness.
      if (currentScope()?.signal?.aborted) throw error;
      this.log.warn({ err: error, runtime_id: runtime.id }, "liveness unavailable; the claim trusts the registry's status");
      return runtime.status === "online";
    }
    return verdict(liveness, this.windowMs, now);
  }
}

/** A positive read is kept this many times longer than a negative one (events drop it when it turns). */
const POSITIVE_TTL_FACTOR = 6;

/** When the runtime was last known alive: its newest beat, or its status change when it was never seen. */
function seenAt(liveness: GetRuntimeLivenessResponse): number {
  return Math.max(liveness.lastSeenAt?.getTime() ?? 0, liveness.lastBeatAt?.getTime() ?? 0) || liveness.statusChangedAt?.getTime() || 0;
}

/** Online, and seen within the window. */
function verdict(liveness: Liveness, windowMs: number, now = Date.now()): boolean {
  if (liveness?.status !== "online") return false;
  return seenAt(liveness) >= now - windowMs;
}
