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
