import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { livenessSignalPrefix } from "@controlplane/events";
import type { Logger } from "@controlplane/log";

/**
 * Facts every liveness replica must learn at once, over core NATS (not
 * stored; a replica that misses one catches up from the database): a runtime
 * went offline, came online without a beat (a registration), or was deleted,
 * or has a pending action. Subjects sit outside the event stream's `<root>.>`.
 */
export type BroadcastKind = "online" | "offline" | "deleted" | "pending";

export class Broadcast {
  private readonly subscription: Subscription;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    onMessage: (kind: BroadcastKind, runtimeId: string) => void,
    log: Logger,
  ) {
    this.subscription = nc.subscribe(`${prefix}.*.*`, {
      callback: (error, message) => {
        if (error) {
          log.warn({ err: error }, "liveness broadcast error");
          return;
        }
        const [kind, runtimeId] = message.subject.slice(prefix.length + 1).split(".");
        if (kind && runtimeId) onMessage(kind as BroadcastKind, runtimeId);
      },
    });
  }

  static prefixFor(subjectRoot: string): string {
    return livenessSignalPrefix(subjectRoot);
  }

  send(kind: BroadcastKind, runtimeId: string): void {
    this.nc.publish(`${this.prefix}.${kind}.${runtimeId}`);
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}
