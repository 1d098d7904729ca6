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
 * The DataLoader pattern, on `dataloader`, with three settings of ours:
 * - dispatch on setImmediate, not DataLoader's default (the end of the
 *   current microtask queue): each HTTP request or socket frame arrives in a
 *   callback of its own, so only the end of the event loop's poll phase
 *   gathers the beats of one turn;
 * - no memoisation (`cache: false`): every beat must reach liveness (it pops
 *   actions), and the gateway keeps its own TTL caches where reads repeat;
 * - the call runs outside the first caller's scope (see `send` below).
 */
export class MicroBatcher<Item, Result> {
  private readonly loader: DataLoader<Item, Result>;

  constructor(
    /** Answers one outcome per item, in order. */
    send: (items: Item[]) => Promise<Array<Settled<Result>>>,
    maxBatch: number,
  ) {
    this.loader = new DataLoader<Item, Result>(
      // The call serves every caller in the batch: it must not inherit the
      // first one's scope (its deadline, or its cancellation if it hangs up).
      // A rejection (service down, deadline) fails every item of the call.
      async (items) => perItem(items.length, await runOutsideScope(() => send([...items]))),
      { cache: false, maxBatchSize: maxBatch, batchScheduleFn: (dispatch) => setImmediate(dispatch) },
    );
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
    const outcome = outcomes[i];
    if (!outcome) return new CodedError(status.INTERNAL, "the batch answered fewer items than it was sent");
    if (outcome.ok) return outcome.value;
    return outcome.error instanceof Error ? outcome.error : new CodedError(status.INTERNAL, String(outcome.error));
  });
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
