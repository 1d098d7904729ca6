import { status } from "@controlplane/grpc";
import type { HeartbeatBatchRequest, HeartbeatBatchResponse, HeartbeatRequest, HeartbeatResponse } from "@controlplane/proto/liveness/v1/liveness";

/**
 * A fleet's beats cost one gRPC call per batch instead of one per beat: the
 * heartbeats that arrive within one turn of the event loop (at most
 * MAX_BATCH) go to liveness in one HeartbeatBatch call, each answered on its
 * own. A lone beat waits for nothing but the end of the current turn.
 */
export class HeartbeatBatcher {
  /** Bounds one call's size (and its share of the message-size limit). */
  static readonly MAX_BATCH = 256;
  private waiting: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly send: (request: HeartbeatBatchRequest) => Promise<HeartbeatBatchResponse>) {}

  /** Resolves with the beat's ack, or rejects with its gRPC-coded error. */
  beat(request: HeartbeatRequest): Promise<HeartbeatResponse> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      if (this.waiting.length >= HeartbeatBatcher.MAX_BATCH) this.flush();
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
    this.send({ beats: batch.map((w) => w.request) }).then(
      ({ outcomes }) =>
        batch.forEach((w, i) => {
          const outcome = outcomes[i]?.outcome;
          if (outcome?.$case === "ack") w.resolve(outcome.value);
          else if (outcome?.$case === "error") w.reject(new BeatError(outcome.value.code, outcome.value.message));
          else w.reject(new BeatError(status.INTERNAL, "liveness answered fewer beats than it was sent"));
        }),
      // The whole call failed (liveness down, deadline): every beat in it did.
      (error: unknown) => batch.forEach((w) => w.reject(error)),
    );
  }
}

interface Waiting {
  request: HeartbeatRequest;
  resolve(response: HeartbeatResponse): void;
  reject(error: unknown): void;
}

/** One beat's error, shaped like a grpc-js ServiceError so `hasCode` reads it. */
export class BeatError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
  ) {
    super(details);
    this.name = "BeatError";
  }
}
