/**
 * A small bounded map whose entries expire. Used for token resolutions and
 * memberships, so a revocation takes effect within the TTL without a
 * round trip per request.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 100_000,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores `value` for the TTL, or until `notAfter` if that comes first. */
  set(key: string, value: V, notAfter?: Date): void {
    const expiresAt = Math.min(Date.now() + this.ttlMs, notAfter?.getTime() ?? Infinity);
    if (expiresAt <= Date.now()) return;
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}

/**
 * Reads through `cache`: a hit is returned as is, a miss loads and stores.
 * Concurrent misses of one key share a single load.
 */
export class ReadThrough<V> {
  private readonly loading = new Map<string, Promise<V>>();
  /** Bumped by `forget`, so a load that started before it does not store a stale value. */
  private readonly generations = new Map<string, number>();

  constructor(
    readonly cache: TtlCache<V>,
    private readonly load: (key: string) => Promise<V>,
  ) {}

  async get(key: string): Promise<V> {
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    let pending = this.loading.get(key);
    if (!pending) {
      const generation = this.generations.get(key) ?? 0;
      pending = this.load(key).then(
        (value) => {
          this.loading.delete(key);
          if ((this.generations.get(key) ?? 0) === generation) this.cache.set(key, value);
          return value;
        },
        (error: unknown) => {
          this.loading.delete(key);
          throw error;
        },
      );
      this.loading.set(key, pending);
    }
    return pending;
  }

  forget(key: string): void {
    this.cache.delete(key);
    this.loading.delete(key);
    this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
  }
}
