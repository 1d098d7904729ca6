import { waitFor } from "@controlplane/testkit";
import { WebSocket, type ClientOptions } from "ws";

/** A frame the daemon socket sent, parsed. */
export interface Frame {
  type: string;
  payload: Record<string, unknown>;
  /** Exactly as received. */
  raw: string;
}

/**
 * A daemon's socket, as a test drives it: frames are collected as they
 * arrive, and `next` waits for one that matches (no sleeping).
 */
export class TestSocket {
  readonly frames: Frame[] = [];
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const raw = String(data);
      const parsed = JSON.parse(raw) as { type: string; payload: Record<string, unknown> };
      const frame = { ...parsed, raw };
      this.frames.push(frame);
      const matched = this.waiters.filter((w) => w.match(frame));
      this.waiters = this.waiters.filter((w) => !matched.includes(w));
      for (const w of matched) w.resolve(frame);
    });
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /**
   * The first frame (already received or to come) that matches; fails after
   * `timeoutMs`. As with `waitFor`, the deadline only ends a wait for a frame
   * that is not coming and asserts nothing about speed: on a loaded machine
   * a wake-up the services pass on in milliseconds can take seconds.
   */
  next(match: (frame: Frame) => boolean, timeoutMs = 30_000): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no matching frame in time")), timeoutMs);
      const settle = (f: Frame) => {
        clearTimeout(timer);
        resolve(f);
      };
      this.waiters.push({ match, resolve: settle });
    });
  }

  send(type: string, payload: unknown): void {
    this.ws.send(JSON.stringify({ type, payload }));
  }

  beat(runtimeId: string, supportsBatchImport = true): void {
    this.send("daemon:heartbeat", { runtime_id: runtimeId, supports_batch_import: supportsBatchImport });
  }

  close(): void {
    this.ws.close();
  }
}

/** Opens a daemon socket the way the daemon does (sorted ids, comma-joined, form-encoded). */
export function openSocket(baseUrl: string, token: string | undefined, runtimeIds: string[], options: ClientOptions = {}): Promise<TestSocket> {
  const query = runtimeIds.length > 0 ? `?${new URLSearchParams({ runtime_ids: [...runtimeIds].sort().join(",") })}` : "";
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/api/daemon/ws${query}`, {
    ...options,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "x-client-platform": "daemon", ...options.headers },
  });
  const socket = new TestSocket(ws);
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(socket));
    ws.once("unexpected-response", (_request, response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => reject(new RefusedUpgrade(response.statusCode ?? 0, response.headers, body)));
    });
    ws.once("error", reject);
  });
}

/** The answer to an upgrade the gateway refused. */
export class RefusedUpgrade extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string | string[] | undefined>,
    readonly body: string,
  ) {
    super(`upgrade refused: ${status} ${body}`);
  }
}

/**
 * Waits until a gateway's hub watches `runtimeIds` at the NATS server, so a
 * task enqueued next is sure to wake the socket (the hub keys runtimes by
 * their canonical, lower-case id, whatever case the daemon sent).
 */
export async function untilWatched(hub: { subscribed(runtimeId: string): Promise<boolean> }, runtimeIds: readonly string[]): Promise<void> {
  for (const runtimeId of runtimeIds) await waitFor(`the gateway to watch ${runtimeId}`, () => hub.subscribed(runtimeId.toLowerCase()));
}
