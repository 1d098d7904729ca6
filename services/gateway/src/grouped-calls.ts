import { CallCancelledError, type CallScope, currentScope, runOutsideScope, status } from "@controlplane/grpc";
import { gauge, histogram } from "@controlplane/metrics";
import { CodedError, outcomeAt, type Settled } from "./batcher.js";

/** Every GroupedCalls of this process, for the waiting gauge (tests may start several gateways). */
const everyGroup = new Set<GroupedCalls<unknown, unknown>>();

/** What operators watch (README, "What to watch"): how full the calls are, and what waits for one. */
const groupedMetrics = {
  items: histogram({
    name: "gateway_task_call_items",
    help: "Items (claims, starts, completions) per task-queue call the gateway made for them, by kind.",
    labelNames: ["kind"] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64],
  }),
  waiting: gauge({
    name: "gateway_task_calls_waiting",
    help: "Claims, starts and completions waiting in the gateway for a task-queue call, by kind.",
    labelNames: ["kind"] as const,
    collect() {
      this.reset();
      for (const group of everyGroup) this.inc({ kind: group.kind }, group.waitingCount);
    },
  }),
};

export interface GroupedCallsOptions<Item> {
  /** The metrics' `kind` label: claim, start, complete. */
  kind: string;
  /** Calls of this kind running at once; 0 sends every item in a call of its own, at once. */
  maxInFlight: number;
  /** Items per call. */
  maxBatch: number;
  /**
   * Each item's deadline, from when it was submitted: waiting for a call
   * counts, so a call's deadline is what its earliest item has left, and an
   * item whose time ran out while it waited is not sent (DEADLINE_EXCEEDED).
   */
  deadlineMs: number;
  /** A call's items weigh at most this together (one heavier item goes alone). */
  maxWeight?: number;
  /** An item's weight, e.g. an upper bound of its encoded bytes. */
  weigh?: (item: Item) => number;
  /** Milliseconds on a monotonic clock (performance.now() unless a test steers time). */
  now?: () => number;
}

/**
 * A busy gateway's requests of one kind share gRPC calls. An item submitted
 * while fewer than `maxInFlight` calls of its kind run goes out at once, in
 * a call of its own, so an idle gateway answers as soon as it would with one
 * call per request. Items submitted while they all run wait together and
 * share the next call (up to `maxBatch` items and `maxWeight`), so a busy
 * one makes fewer, larger calls instead of queueing one per request on the
 * connection and in the service: each costs both ends about as much CPU
 * whatever it carries.
 *
 * Each caller gets its own item's outcome. An item whose caller went away
 * while it waited is left out of the call and rejected as cancelled; one
 * whose deadline passed while it waited, rejected DEADLINE_EXCEEDED. A call
 * that fails (service down, deadline) fails every item it carried. The call
 * runs outside the first caller's scope: it serves every caller in it, so it
 * must not inherit one's deadline or die with its cancellation.
 */
export class GroupedCalls<Item, Result> {
  readonly kind: string;
  private readonly now: () => number;
  private waiting: Array<Waiting<Item, Result>> = [];
  private inFlight = 0;

  constructor(
    /** Answers one outcome per item, in order, within `deadlineMs`. */
    private readonly send: (items: Item[], deadlineMs: number) => Promise<Array<Settled<Result>>>,
    private readonly options: GroupedCallsOptions<Item>,
  ) {
    if (options.maxBatch < 1 || options.maxInFlight < 0) throw new RangeError("maxBatch must be at least 1 and maxInFlight at least 0");
    this.kind = options.kind;
    this.now = options.now ?? (() => performance.now());
    everyGroup.add(this as GroupedCalls<unknown, unknown>);
  }

  /** Items waiting for a call. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Stops counting this group in the waiting gauge (a gateway that stopped). */
  close(): void {
    everyGroup.delete(this as GroupedCalls<unknown, unknown>);
  }

  /** Resolves with the item's result, or rejects with its error. */
  submit(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      const waiting = { item, scope: currentScope(), dueAt: this.now() + this.options.deadlineMs, resolve, reject };
      if (this.options.maxInFlight === 0) void this.call([waiting]);
      else {
        this.waiting.push(waiting);
        this.drain();
      }
    });
  }

  private drain(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const batch = this.nextBatch();
      if (batch.length === 0) continue;
      this.inFlight++;
      void this.call(batch).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  /** The next call's items, in arrival order; those whose caller is gone are rejected on the way. */
  private nextBatch(): Array<Waiting<Item, Result>> {
    const { maxBatch, maxWeight = Number.POSITIVE_INFINITY, weigh } = this.options;
    const batch: Array<Waiting<Item, Result>> = [];
    const now = this.now();
    let weight = 0;
    let taken = 0;
    for (const waiting of this.waiting) {
      if (batch.length === maxBatch) break;
      const itemWeight = weigh ? weigh(waiting.item) : 0;
      if (batch.length > 0 && weight + itemWeight > maxWeight) break;
      taken++;
      if (waiting.scope?.isGone?.()) {
        waiting.reject(new CallCancelledError("the HTTP client went away before its call left"));
        continue;
      }
      if (waiting.dueAt <= now) {
        waiting.reject(new CodedError(status.DEADLINE_EXCEEDED, "the deadline passed while waiting for a call"));
        continue;
      }
      batch.push(waiting);
      weight += itemWeight;
    }
    this.waiting = taken === this.waiting.length ? [] : this.waiting.slice(taken);
    return batch;
  }

  private async call(batch: Array<Waiting<Item, Result>>): Promise<void> {
    groupedMetrics.items.observe({ kind: this.kind }, batch.length);
    let outcomes: Array<Settled<Result>>;
    try {
      // Items are in arrival order: the first has the least time left.
      const deadlineMs = Math.max(1, Math.ceil((batch[0]?.dueAt ?? 0) - this.now()));
      outcomes = await runOutsideScope(() =>
        this.send(
          batch.map(({ item }) => item),
          deadlineMs,
        ),
      );
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
      return;
    }
    batch.forEach((waiting, i) => {
      const outcome = outcomeAt(outcomes, i);
      if (outcome.ok) waiting.resolve(outcome.value);
      else waiting.reject(outcome.error);
    });
  }
}

interface Waiting<Item, Result> {
  item: Item;
  /** The submitting request's scope, asked whether its caller is gone before the item is sent. */
  scope: CallScope | undefined;
  /** When its deadline passes (performance.now()). */
  dueAt: number;
  resolve(result: Result): void;
  reject(error: unknown): void;
}
