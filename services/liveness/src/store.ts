import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

/**
 * The shared liveness store: a NATS KV bucket whose entries expire
 * LIVENESS_TTL after their last write (a bucket-level TTL, which the NATS
 * servers here honour). A runtime's key says "beat recently" to every
 * replica and survives a liveness restart; the sweeper consults it before
 * taking a runtime offline.
 */
export class LivenessStore {
  /**
   * Writes awaiting the server's ack at most. Beyond it a touch is skipped
   * (the beat retries on its next beat, and the database flush vouches for
   * the runtime meanwhile), so a slow store never slows beats or piles up.
   */
  static readonly MAX_IN_FLIGHT = 2_000;
  private inFlight = 0;

  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, bucket: string, ttlMs: number): Promise<LivenessStore> {
    const kv = await new Kvm(nc).create(bucket, { ttl: ttlMs, history: 1 });
    return new LivenessStore(kv);
  }

  static bucketFor(subjectRoot: string): string {
    return `${subjectRoot.replace(/[^A-Za-z0-9_-]/g, "_")}_liveness`;
  }

  /**
   * Records a beat without waiting for the server: false when skipped
   * because too many writes are in flight; `onFailure` runs if the write is
   * later refused or lost.
   */
  touch(runtimeId: string, onFailure: (error: unknown) => void): boolean {
    if (this.inFlight >= LivenessStore.MAX_IN_FLIGHT) return false;
    this.inFlight++;
    this.kv.put(runtimeId, "1").then(
      () => this.inFlight--,
      (error: unknown) => {
        this.inFlight--;
        onFailure(error);
      },
    );
    return true;
  }

  /** True when the runtime beat within the TTL (as far as any replica wrote). */
  async isAlive(runtimeId: string): Promise<boolean> {
    const entry = await this.kv.get(runtimeId);
    return entry !== null && entry.operation === "PUT";
  }

  async forget(runtimeId: string): Promise<void> {
    await this.kv.delete(runtimeId);
  }
}
