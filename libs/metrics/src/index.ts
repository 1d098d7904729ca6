import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * One registry per process. Every sample it serves carries a `service` label
 * naming the program (see setServiceLabel); in all-in-one mode the services
 * share it, and their samples are told apart by their own labels
 * (`grpc_service`, `pool`, `schema`, `route`).
 */
export const registry = new Registry();
// The event loop's delay is sampled every 100 ms, not prom-client's 10: its
// timer woke every process 100 times a second, nearly 1% of a core for an
// idle service here, and 10 samples a second still give a scrape hundreds.
collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });

/**
 * Names the program in the `service` label of every sample, the process
 * metrics included: the service's name when it runs alone, "controlplane"
 * for all-in-one. Applied when the registry is read, so metrics made before
 * the call carry it too.
 */
export function setServiceLabel(service: string): void {
  registry.setDefaultLabels({ service });
}

type Config<L extends string> = { name: string; help: string; labelNames: readonly L[] };

/** Returns the metric registered under `name`, creating it on first use. */
export function counter<L extends string>(config: Config<L>): Counter<L> {
  return (registry.getSingleMetric(config.name) as Counter<L> | undefined) ?? new Counter({ ...config, registers: [registry] });
}

export function gauge<L extends string>(config: Config<L> & { collect?: (this: Gauge<L>) => void | Promise<void> }): Gauge<L> {
  return (registry.getSingleMetric(config.name) as Gauge<L> | undefined) ?? new Gauge({ ...config, registers: [registry] });
}

export function histogram<L extends string>(config: Config<L> & { buckets?: number[] }): Histogram<L> {
  return (registry.getSingleMetric(config.name) as Histogram<L> | undefined) ?? new Histogram({ buckets: LATENCY_BUCKETS, ...config, registers: [registry] });
}

/** Seconds; dense below 50 ms where the hot paths live. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Serves GET /metrics in the Prometheus text format. Port 0 picks a free port. */
export async function startMetricsServer(port: number, host = "0.0.0.0"): Promise<{ port: number; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method === "GET" && req.url?.split("?")[0] === "/metrics") {
      registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { "Content-Type": registry.contentType });
          res.end(body);
        })
        .catch((error: unknown) => {
          res.writeHead(500, { "Content-Type": "text/plain" });
          res.end(String(error));
        });
      return;
    }
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
