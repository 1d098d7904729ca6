import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** How many ports below the kernel's ephemeral range freePort draws from. */
const DRAWN_PORTS = 12_000;
const DRAWS = 50;
/** Ports this process handed out: a port probed free is free again until its service listens, so none is handed out twice. */
const handedOut = new Set<number>();

/**
 * A TCP port free right now on every address, for services that must know
 * each other's address before either starts (they call each other).
 *
 * Drawn at random from just below the kernel's ephemeral range: a port the
 * kernel handed out itself would be free again once probed, and the next
 * outgoing connection (to Postgres, to NATS) could take it before the
 * service listens. Outgoing connections never use ports outside that
 * range, and this process never hands out a port twice. Another process
 * may still draw the same port before the service listens (rarely, with
 * twelve thousand to draw from): a caller that starts several processes at
 * once should be ready to start again on EADDRINUSE. Where the range
 * cannot be read, the kernel picks.
 */
export async function freePort(): Promise<number> {
  const below = ephemeralRangeStart();
  if (below !== undefined && below - DRAWN_PORTS >= 1024) {
    for (let draw = 0; draw < DRAWS; draw++) {
      const port = below - 1 - Math.floor(Math.random() * DRAWN_PORTS);
      if (handedOut.has(port)) continue;
      // Reserved before the probe: a concurrent call must not draw it meanwhile.
      handedOut.add(port);
      if ((await listenOnce(port)) !== undefined) return port;
      handedOut.delete(port);
    }
  }
  const picked = await listenOnce(0);
  if (picked === undefined) throw new Error("no free TCP port");
  return handOut(picked);
}

function handOut(port: number): number {
  handedOut.add(port);
  return port;
}

/** The first port of the kernel's ephemeral range (Linux), if known. */
function ephemeralRangeStart(): number | undefined {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : undefined;
  } catch {
    return undefined;
  }
}

/** Listens on `port` on every address and closes again: the port, or undefined when it is taken. */
function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => (error.code === "EADDRINUSE" || error.code === "EACCES" ? resolve(undefined) : reject(error)));
    server.listen(port, "0.0.0.0", () => {
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}
