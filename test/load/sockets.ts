import * as hdr from "hdr-histogram-js";
import { WebSocket } from "ws";

/**
 * Daemon sockets for the load generator: raw `ws` clients opened the way the
 * daemon opens them (sorted ids, comma-joined, form-encoded; no extension
 * offered), keeping no frames (the caller handles each as it arrives).
 */
export function openDaemonSocket(baseUrl: string, token: string, runtimeIds: string[]): Promise<WebSocket> {
  const query = new URLSearchParams({ runtime_ids: [...runtimeIds].sort().join(",") });
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/api/daemon/ws?${query}`, {
    headers: { authorization: `Bearer ${token}`, "x-client-platform": "daemon" },
    perMessageDeflate: false,
    // The generator's CPU is not what is measured; the gateway's frames are ASCII JSON.
    skipUTF8Validation: true,
  });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_request, response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => reject(new Error(`upgrade refused: ${response.statusCode} ${body}`)));
    });
    ws.once("error", reject);
  });
}

/**
 * Opens one socket per id set, `concurrency` upgrades at a time. Returns the
 * sockets (in order), the upgrade latency histogram (µs) and the wall time.
 */
export async function openMany(
  baseUrl: string,
  token: string,
  idSets: string[][],
  concurrency: number,
): Promise<{ sockets: WebSocket[]; upgrade: hdr.Histogram; seconds: number }> {
  const sockets: WebSocket[] = new Array(idSets.length);
  const upgrade = hdr.build();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, idSets.length) }, async () => {
      while (next < idSets.length) {
        const i = next++;
        const t0 = performance.now();
        sockets[i] = await openDaemonSocket(baseUrl, token, idSets[i]!);
        upgrade.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      }
    }),
  );
  return { sockets, upgrade, seconds: (performance.now() - started) / 1000 };
}

/** Closes every socket and waits until all are closed (terminated after `graceMs`). */
export async function closeAll(sockets: WebSocket[], graceMs = 5_000): Promise<void> {
  const closed = sockets.map((ws) =>
    ws.readyState === WebSocket.CLOSED ? Promise.resolve() : new Promise<void>((resolve) => ws.once("close", () => resolve())),
  );
  for (const ws of sockets) ws.close();
  const timer = setTimeout(() => {
    for (const ws of sockets) ws.terminate();
  }, graceMs);
  await Promise.all(closed);
  clearTimeout(timer);
}

/** A histogram's percentile in milliseconds (values recorded in µs). */
export function ms(h: hdr.Histogram, percentile: number): string {
  if (h.totalCount === 0) return "-";
  const value = h.getValueAtPercentile(percentile) / 1000;
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}
