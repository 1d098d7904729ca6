import { LRUCache } from "lru-cache";

/**
 * What the store holds for a key. lru-cache takes no null or undefined
 * values, and a loaded value the keep rule refuses must reach the callers
 * waiting on its load without ever being served from the cache.
 */
interface Box<V> {
  value: V;
  cacheable: boolean;
}

/** A loader, handed to the store's fetch as its context (lru-cache binds one fetch method per cache). */
type Fetch<V> = (key: string, options: LRUCache.FetcherFetchOptions<string, Box<V>, Fetch<V>>) => Promise<Box<V>>;

/**
 * A bounded map whose entries expire, on lru-cache: when full, the least
 * recently used entry goes; an expired entry is never served. Used for token
 * resolutions, memberships and other services' reads, so a change takes
 * effect within the TTL without a round trip per request.
 */
export class TtlCache<V> {
  /** @internal ReadThrough fetches through it. */
  readonly store: LRUCache<string, Box<V>, Fetch<V>>;

  constructor(
    readonly ttlMs: number,
    maxEntries = 100_000,
  ) {
    this.store = new LRUCache<string, Box<V>, Fetch<V>>({
      max: maxEntries,
      ttl: ttlMs,
      // Expiry is checked on read, against the clock: no timer per entry.
      ttlAutopurge: false,
      // Read the clock on every check. lru-cache's default (1 ms) keeps a
      // reading for a millisecond with a new timer to drop it: on a busy
      // gateway that was a timer per cache per millisecond, costlier than
      // the readings it saved.
      ttlResolution: 0,
      // Never serve past expiry (a credential's own expiry included): no stale reads.
      allowStale: false,
      // A failed reload keeps the live entry until its own expiry.
      noDeleteOnFetchRejection: true,
      // A load overtaken by delete() answers undefined: ReadThrough then loads again.
      allowStaleOnFetchAbort: true,
      fetchMethod: (key, _stale, { context, options }) => context(key, options),
    });
  }

  get(key: string): V | undefined {
    const box = this.store.get(key);
    return box?.cacheable ? box.value : undefined;
  }

  /** Milliseconds until the entry expires (0 when there is none). */
  remainingMs(key: string): number {
    return this.store.getRemainingTTL(key);
  }

  /** Stores `value` for the TTL, or until `notAfter` if that comes first. */
  set(key: string, value: V, notAfter?: Date): void {
    const ttl = ttlUntil(this.ttlMs, notAfter);
    if (ttl <= 0) return;
    this.store.set(key, { value, cacheable: true }, { ttl });
  }

  delete(key: string): void {
    this.store.delete(key);
  }
}

/** The TTL of an entry that may not outlive `notAfter`. */
function ttlUntil(ttlMs: number, notAfter: Date | undefined): number {
  return notAfter === undefined ? ttlMs : Math.min(ttlMs, notAfter.getTime() - Date.now());
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
 * Reads through `cache` with lru-cache's fetch: a hit is returned as is, a
 * miss loads and stores, and concurrent misses of one key share a single
 * load, so an entry expiring under load costs one call, not one per waiting
 * request.
 *
 * Refresh-ahead is ours, not lru-cache's: its `allowStale` serves an entry
 * *after* expiry while reloading, which would serve a credential past its
 * own expiry. Here a hit within `refreshAheadMs` of expiry starts a forced
 * fetch (one per key: lru-cache joins a fetch in flight) and is served
 * meanwhile, and nothing is ever served once expired.
 */
export class ReadThrough<V> {
  private readonly fetch: Fetch<V>;

  constructor(
    readonly cache: TtlCache<V>,
    load: (key: string) => Promise<V>,
    private readonly options: ReadThroughOptions<V> = {},
  ) {
    this.fetch = async (key, fetchOptions) => {
      const value = await load(key);
      const ttl = ttlUntil(cache.ttlMs, options.notAfter?.(value));
      const cacheable = ttl > 0 && (options.keep?.(value) ?? true);
      // A refused value still answers this load's callers, and replaces what
      // was stored (e.g. a refresh learned the member left); it is never a hit.
      if (cacheable) fetchOptions.ttl = ttl;
      return { value, cacheable };
    };
  }

  async get(key: string): Promise<V> {
    for (;;) {
      const hit = this.cache.store.get(key);
      if (hit?.cacheable) return this.served(key, hit.value);
      // forceRefresh: whatever is stored is no hit (refused, or expired), load anew or join the load in flight.
      const loaded = await this.cache.store.fetch(key, { context: this.fetch, forceRefresh: true });
      // undefined: forget() overtook this load, whose answer may predate it; load again.
      if (loaded !== undefined) return loaded.value;
    }
  }

  /**
   * The live value of `key` without waiting, as get would serve it (a hit
   * near expiry starts the same refresh), or undefined on a miss, where the
   * caller awaits get. For the hottest paths: a hit costs no promise. (A
   * value that is itself undefined cannot be told from a miss.)
   */
  peek(key: string): V | undefined {
    const hit = this.cache.store.get(key);
    return hit?.cacheable ? this.served(key, hit.value) : undefined;
  }

  /** A hit's value, reloaded in the background when it is within refreshAheadMs of expiry. */
  private served(key: string, value: V): V {
    const refreshAhead = this.options.refreshAheadMs;
    if (refreshAhead !== undefined && this.cache.remainingMs(key) <= refreshAhead) {
      this.cache.store.fetch(key, { context: this.fetch, forceRefresh: true }).catch(() => undefined);
    }
    return value;
  }

  /** Drops the entry; a load in flight is discarded and its callers get a fresh one. */
  forget(key: string): void {
    this.cache.delete(key);
  }
}
