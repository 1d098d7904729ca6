import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { taskWakePrefix } from "@controlplane/events";
import type { Logger } from "@controlplane/log";

/**
 * Wake-ups for long-polling claims and daemon sockets, over core NATS: an
 * enqueue publishes "<root>_wake.task.<runtime>" after commit, and every
 * task-queue replica wakes its waiters for that runtime (gateways turn it
 * into `daemon:task_available` on the sockets that watch the runtime). Best effort by design: a lost wake-up
 * only means a claim answers at its deadline and the daemon asks again. The
 * subject is outside the event stream's `<root>.>` so nothing is stored.
 */
export class WakeHub {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly subscription: Subscription;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    log: Logger,
  ) {
    this.subscription = nc.subscribe(`${prefix}.*`, {
      callback: (error, message) => {
        if (error) {
          log.warn({ err: error }, "wake-up subscription error");
          return;
        }
        const runtimeId = message.subject.slice(prefix.length + 1);
        for (const waiter of this.waiters.get(runtimeId) ?? []) waiter.wake();
      },
    });
  }

  static subjectPrefix(subjectRoot: string): string {
    return taskWakePrefix(subjectRoot);
  }

  /**
   * Tells every replica, and every gateway holding the runtime's daemon
   * socket, that `runtimeId` has work: `taskId` when a task was queued for
   * it, none when a finished task freed one of its slots.
   */
  notify(runtimeId: string, taskId?: string): void {
    if (!this.closed) this.nc.publish(`${this.prefix}.${runtimeId}`, taskId ?? "");
  }

  /** Starts listening for `runtimeId` (before looking for work, so no wake-up is missed). */
  listen(runtimeId: string): Waiter {
    const waiter = new Waiter(() => {
      const set = this.waiters.get(runtimeId);
      set?.delete(waiter);
      if (set?.size === 0) this.waiters.delete(runtimeId);
    });
    if (this.closed) waiter.release();
    let set = this.waiters.get(runtimeId);
    if (!set) {
      set = new Set();
      this.waiters.set(runtimeId, set);
    }
    set.add(waiter);
    return waiter;
  }

  /** How many claims are waiting right now (a gauge). */
  get waiting(): number {
    let count = 0;
    for (const set of this.waiters.values()) count += set.size;
    return count;
  }

  /** Releases every waiting claim (they answer at once) and stops listening. */
  close(): void {
    this.closed = true;
    for (const set of this.waiters.values()) for (const waiter of set) waiter.release();
    this.subscription.unsubscribe();
  }
}

/** One waiting claim. */
export class Waiter {
  private pending = false;
  private released = false;
  private resolve: ((woken: boolean) => void) | undefined;

  constructor(private readonly dispose: () => void) {}

  wake(): void {
    this.pending = true;
    this.settle(true);
  }

  /** Ends the wait for good (shutdown). */
  release(): void {
    this.released = true;
    this.settle(false);
  }

  /**
   * Resolves true on a wake-up (possibly one already received), false on
   * timeout, release, or when `signal` aborts (the claimer went away).
   */
  next(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.released || signal?.aborted) return Promise.resolve(false);
    if (this.pending) {
      this.pending = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(false), timeoutMs);
      const onAbort = () => this.settle(false);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.resolve = (woken) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.resolve = undefined;
        if (woken) this.pending = false;
        resolve(woken);
      };
    });
  }

  close(): void {
    this.dispose();
  }

  private settle(woken: boolean): void {
    this.resolve?.(woken);
  }
}
