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
    return this.entry(key)?.value;
  }

  /** The live entry with its expiry, or undefined. */
  entry(key: string): { value: V; expiresAt: number } | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
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

export interface ReadThroughOptions<V> {
  /** A value is never kept past this (e.g. a credential's own expiry). */
  notAfter?: (value: V) => Date | undefined;
  /** Only values this accepts are kept (e.g. not a negative answer). */
  keep?: (value: V) => boolean;
  /**
   * An entry this close to its expiry is reloaded in the background while
   * it is still served, so a busy key never expires under its readers. A
   * failed reload changes nothing: the entry still expires on time.
   */
  refreshAheadMs?: number;
}

/**
 * Reads through `cache`: a hit is returned as is, a miss loads and stores.
 * Concurrent misses of one key share a single load, so an entry expiring
 * under load costs one call, not one per waiting request.
 */
export class ReadThrough<V> {
  private readonly loading = new Map<string, Promise<V>>();
  /** Bumped by `forget`, so a load that started before it does not store a stale value. */
  private readonly generations = new Map<string, number>();

  constructor(
    readonly cache: TtlCache<V>,
    private readonly load: (key: string) => Promise<V>,
    private readonly options: ReadThroughOptions<V> = {},
  ) {}

  async get(key: string): Promise<V> {
    const hit = this.cache.entry(key);
    if (hit !== undefined) {
      const refreshAhead = this.options.refreshAheadMs;
      if (refreshAhead !== undefined && hit.expiresAt - Date.now() <= refreshAhead && !this.loading.has(key)) {
        this.start(key).catch(() => undefined);
      }
      return hit.value;
    }
    return this.loading.get(key) ?? this.start(key);
  }

  /** Starts the one load of `key` (callers check none is running). */
  private start(key: string): Promise<V> {
    const generation = this.generations.get(key) ?? 0;
    // A load that `forget` overtook must not unregister the newer one.
    const done = () => {
      if (this.loading.get(key) === pending) this.loading.delete(key);
    };
    const pending: Promise<V> = this.load(key).then(
      (value) => {
        done();
        const current = (this.generations.get(key) ?? 0) === generation;
        if (current && (this.options.keep?.(value) ?? true)) this.cache.set(key, value, this.options.notAfter?.(value));
        else if (current) this.cache.delete(key); // e.g. a refresh learned the member left
        return value;
      },
      (error: unknown) => {
        done();
        throw error;
      },
    );
    this.loading.set(key, pending);
    return pending;
  }

  forget(key: string): void {
    this.cache.delete(key);
    this.loading.delete(key);
    this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
  }
}
