/**
 * Runs one statement for many keys (group commit). A call made while fewer
 * than `maxInFlight` statements of its kind run goes out at once, with only
 * the calls made in the same synchronous run (a batch call's items, which
 * arrive together); the calls that arrive while the statements all run wait
 * together and share the next statement, its round trip and its commit. So
 * an idle service answers as soon as it would without this, and a busy one
 * sends fewer, larger statements instead of queueing one per request behind
 * the others.
 *
 * `run` gets distinct keys, each with the input of its first caller, and
 * answers what it found for each; a key it leaves out is answered
 * undefined. When a key is asked twice in one statement the first caller
 * gets its value and the others undefined, as if their statements had run
 * after it (a guarded transition finds nothing the second time). A failed
 * statement fails every call it carried.
 */
export class Coalescer<K, I, V> {
  private queued = new Map<K, Queued<I, V>>();
  private inFlight = 0;
  private drainDue = false;

  constructor(
    private readonly run: (batch: ReadonlyMap<K, I>) => Promise<ReadonlyMap<K, V>>,
    private readonly options: { maxBatch: number; maxInFlight: number },
  ) {
    if (options.maxBatch < 1 || options.maxInFlight < 1) throw new RangeError("maxBatch and maxInFlight must be at least 1");
  }

  /** The value `run` found for `key`, or undefined. */
  get(key: K, input: I): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      const queued = this.queued.get(key);
      if (queued) queued.waiters.push({ resolve, reject });
      else this.queued.set(key, { input, waiters: [{ resolve, reject }] });
      this.drainSoon();
    });
  }

  /**
   * Drains once the promise reactions already due have run: the items of a
   * batch call reach here one after another, each a few reactions into its
   * handler, and were each drained at once the first `maxInFlight` would go
   * alone and only the rest together.
   */
  private drainSoon(): void {
    if (this.drainDue) return;
    this.drainDue = true;
    queueMicrotask(() => {
      this.drainDue = false;
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < this.options.maxInFlight && this.queued.size > 0) {
      const batch = new Map<K, Queued<I, V>>();
      for (const [key, queued] of this.queued) {
        if (batch.size === this.options.maxBatch) break;
        batch.set(key, queued);
        this.queued.delete(key);
      }
      this.inFlight++;
      this.send(batch).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  private async send(batch: Map<K, Queued<I, V>>): Promise<void> {
    let found: ReadonlyMap<K, V>;
    try {
      found = await this.run(new Map([...batch].map(([key, queued]) => [key, queued.input])));
    } catch (error) {
      for (const { waiters } of batch.values()) for (const waiter of waiters) waiter.reject(error);
      return;
    }
    for (const [
      key,
      {
        waiters: [first, ...later],
      },
    ] of batch) {
      first?.resolve(found.get(key));
      for (const waiter of later) waiter.resolve(undefined);
    }
  }
}

interface Queued<I, V> {
  /** The first caller's. */
  input: I;
  waiters: Waiter<V>[];
}

interface Waiter<V> {
  resolve(value: V | undefined): void;
  reject(error: unknown): void;
}
