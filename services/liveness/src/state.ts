/**
 * What this replica keeps in memory per runtime: enough to answer a beat
 * without touching the database in the common case.
 */
export interface RuntimeState {
  workspaceId: string;
  status: "online" | "offline";
  /**
   * When that status took effect (ms): a change learned late (an event
   * processed after a newer one, a lookup answered after a deregister)
   * never overwrites a newer status.
   */
  statusChangedAt: number;
  /** The latest beat this replica saw (ms). */
  lastBeatAt: number;
  /** The latest beat this replica saw come over a daemon socket (ms; 0: none). */
  lastSocketBeatAt: number;
  /** When last_seen_at last reached the database for it (ms; 0: unknown). */
  lastFlushedAt: number;
  /** When its key in the liveness store was last refreshed (ms). */
  storeWrittenAt: number;
}

export class LivenessState {
  readonly runtimes = new Map<string, RuntimeState>();
  /** The newest beat this replica answered, of any runtime (ms; 0: none yet). */
  newestBeatAt = 0;
  /** The newest beat this replica has written to the fleet pulse (ms). */
  pulseRecordedAt = 0;
  /** Runtimes to write in the next bulk flush, with their latest beat. */
  private pendingFlush = new Map<string, number>();
  /** Runtimes that may have pending actions, with a version bumped on each hint. */
  private readonly maybePending = new Map<string, number>();

  queueFlush(runtimeId: string, at: number): void {
    this.pendingFlush.set(runtimeId, at);
  }

  /** Hands over the beats to flush and starts a new set. */
  takeFlush(): Map<string, number> {
    const taken = this.pendingFlush;
    this.pendingFlush = new Map();
    return taken;
  }

  get flushBacklog(): number {
    return this.pendingFlush.size;
  }

  hintPending(runtimeId: string): void {
    this.maybePending.set(runtimeId, (this.maybePending.get(runtimeId) ?? 0) + 1);
  }

  /** The hint's version, or undefined when nothing may be pending. */
  pendingVersion(runtimeId: string): number | undefined {
    return this.maybePending.get(runtimeId);
  }

  /** Drops the hint unless a newer one arrived while the beat was probing. */
  clearPending(runtimeId: string, version: number): void {
    if (this.maybePending.get(runtimeId) === version) this.maybePending.delete(runtimeId);
  }

  replacePendingHints(runtimeIds: Iterable<string>): void {
    for (const id of runtimeIds) this.hintPending(id);
  }

  /**
   * Another replica recorded the runtime online without a beat here (a
   * registration). Its next beat here needs no flip; the flush it queues
   * then is harmless.
   */
  markOnline(runtimeId: string, at = Date.now()): void {
    this.setStatus(runtimeId, "online", at);
  }

  markOffline(runtimeId: string, at = Date.now()): void {
    this.setStatus(runtimeId, "offline", at);
  }

  /** Applies a status that took effect at `at`, unless a newer change is already known. */
  setStatus(runtimeId: string, status: RuntimeState["status"], at: number): void {
    const state = this.runtimes.get(runtimeId);
    if (!state || at < state.statusChangedAt) return;
    state.status = status;
    state.statusChangedAt = at;
  }

  forget(runtimeId: string): void {
    this.runtimes.delete(runtimeId);
    this.pendingFlush.delete(runtimeId);
  }
}
