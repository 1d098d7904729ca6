import DataLoader from "dataloader";
import { runOutsideScope, status } from "@controlplane/grpc";

/** One item's outcome in a batch answer. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * A fleet's requests cost one gRPC call per batch instead of one each: the
 * requests made within one turn of the event loop (at most `maxBatch` a call)
 * go out together, and each caller gets its own item's outcome. A lone
 * request waits for nothing but the end of the current turn.
 *
 * With `minIntervalMs`, calls go out at most that often: a request made
 * sooner after the previous call waits for the interval's end and shares the
 * next call with everything that arrived meanwhile. A request after a quiet
 * spell still goes at the end of its turn. At a steady rate the batches grow
 * with it (rate x interval) instead of staying at what one turn gathers.
 *
 * The DataLoader pattern, on `dataloader`, with three settings of ours:
 * - dispatch on setImmediate (or a timer, within the interval), not
 *   DataLoader's default (the end of the current microtask queue): each HTTP
 *   request or socket frame arrives in a callback of its own, so only the
 *   end of the event loop's poll phase gathers the beats of one turn;
 * - no memoisation (`cache: false`): every beat must reach liveness (it pops
 *   actions), and the gateway keeps its own TTL caches where reads repeat;
 * - the call runs outside the first caller's scope (see `send` below).
 */
export class MicroBatcher<Item, Result> {
  private readonly loader: DataLoader<Item, Result>;
  private readonly minIntervalMs: number;
  /** When the previous call went out (performance.now()). */
  private lastSentAt = Number.NEGATIVE_INFINITY;

  constructor(
    /** Answers one outcome per item, in order. */
    send: (items: Item[]) => Promise<Array<Settled<Result>>>,
    options: { maxBatch: number; minIntervalMs?: number },
  ) {
    this.minIntervalMs = options.minIntervalMs ?? 0;
    this.loader = new DataLoader<Item, Result>(
      // The call serves every caller in the batch: it must not inherit the
      // first one's scope (its deadline, or its cancellation if it hangs up).
      // A rejection (service down, deadline) fails every item of the call.
      async (items) => perItem(items.length, await runOutsideScope(() => send([...items]))),
      { cache: false, maxBatchSize: options.maxBatch, batchScheduleFn: (dispatch) => this.schedule(dispatch) },
    );
  }

  /** At the end of this turn, or at the end of the interval since the previous call. */
  private schedule(dispatch: () => void): void {
    const sendNow = () => {
      this.lastSentAt = performance.now();
      dispatch();
    };
    const wait = this.lastSentAt + this.minIntervalMs - performance.now();
    if (wait > 0) setTimeout(sendNow, wait);
    else setImmediate(sendNow);
  }

  /** Resolves with the item's result, or rejects with its error. */
  submit(item: Item): Promise<Result> {
    return this.loader.load(item);
  }
}

/**
 * The answer in DataLoader's per-item convention (an Error instance fails
 * that item, anything else is its value), one per item sent: an item a short
 * answer left out fails on its own.
 */
function perItem<R>(count: number, outcomes: Array<Settled<R>>): Array<R | Error> {
  return Array.from({ length: count }, (_, i) => {
    const outcome = outcomeAt(outcomes, i);
    if (outcome.ok) return outcome.value;
    return outcome.error instanceof Error ? outcome.error : new CodedError(status.INTERNAL, String(outcome.error));
  });
}

/** Item i's outcome in a batch answer; INTERNAL when the answer left it out. */
export function outcomeAt<R>(outcomes: Array<Settled<R>>, i: number): Settled<R> {
  return outcomes[i] ?? { ok: false, error: new CodedError(status.INTERNAL, "the batch answered fewer items than it was sent") };
}

/** One item's error, shaped like a grpc-js ServiceError so `hasCode` reads it. */
export class CodedError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
  ) {
    super(details);
    this.name = "CodedError";
  }
}
