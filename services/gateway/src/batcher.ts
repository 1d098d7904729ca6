import { runOutsideScope, status } from "@controlplane/grpc";

/** One item's outcome in a batch answer. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * A fleet's requests cost one gRPC call per batch instead of one each: the
 * requests made within one turn of the event loop (at most `maxBatch`) go out
 * in one call, and each caller gets its own item's outcome. A lone request
 * waits for nothing but the end of the current turn.
 */
export class MicroBatcher<Item, Result> {
  private waiting: Array<{ item: Item; resolve(value: Result): void; reject(error: unknown): void }> = [];
  private scheduled = false;

  constructor(
    /** Answers one outcome per item, in order. */
    private readonly send: (items: Item[]) => Promise<Array<Settled<Result>>>,
    private readonly maxBatch: number,
  ) {}

  /** Resolves with the item's result, or rejects with its error. */
  submit(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.waiting.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    const batch = this.waiting;
    if (batch.length === 0) return;
    this.waiting = [];
    // The call serves every caller in the batch: it must not inherit the
    // first one's scope (its deadline, or its cancellation if it hangs up).
    runOutsideScope(() => this.send(batch.map((w) => w.item))).then(
      (outcomes) => {
        for (const [i, w] of batch.entries()) {
          const outcome = outcomes[i];
          if (!outcome) w.reject(new CodedError(status.INTERNAL, "the batch answered fewer items than it was sent"));
          else if (outcome.ok) w.resolve(outcome.value);
          else w.reject(outcome.error);
        }
      },
      // The whole call failed (service down, deadline): every item in it did.
      (error: unknown) => {
        for (const w of batch) w.reject(error);
      },
    );
  }
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
