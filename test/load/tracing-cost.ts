/**
 * What tracing costs on the kit's hot paths (run on demand:
 * `node --import tsx test/load/tracing-cost.ts`).
 *
 * 1. The instrumentation alone, in a tight loop: what the gRPC kit adds to
 *    one call (client and server side together) and the pool to one query,
 *    with tracing off and on. Steady even on a busy machine.
 * 2. End to end: a unary gRPC call through our server/client kit (the path
 *    of every heartbeat and claim) and a slonik query through our pool,
 *    sequential (p50) and 64 in flight (calls/s, and this process's CPU per
 *    call: client, server and pool all live here). Modes alternate round by
 *    round so a burst of load elsewhere hits them alike:
 *    - `off`: no provider, as with no OTLP endpoint configured;
 *    - `on`: every call inside a parent span (as under a gateway request),
 *      spans recorded into a batch processor whose exporter drops them (the
 *      in-process cost, no network);
 *    - `unsampled`: OTEL_TRACES_SAMPLER=always_off: context flows, nothing
 *      is recorded.
 *    Figures: the best round (noise only ever adds) and the median round.
 * In a tree without the tracing kit only `off` runs: the same script gives
 * the before/after comparison.
 */
import * as hdr from "hdr-histogram-js";
import { createClient, GrpcServer, Metadata, type UnaryHandlers } from "@controlplane/grpc";
import { createDbPool, sql, type DatabasePool } from "@controlplane/db";
import { createLogger } from "@controlplane/log";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { createTestDatabase } from "@controlplane/testkit";

const CALLS = Number(process.env.BENCH_CALLS ?? 2_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const IN_FLIGHT = 64;
const log = createLogger("bench", "silent");

type TracingKit = typeof import("@controlplane/tracing");
type Testing = typeof import("@controlplane/tracing/testing");
type GrpcHooks = typeof import("../../libs/grpc/src/tracing.js");
let kit: { tracing: TracingKit; testing: Testing; hooks: GrpcHooks } | undefined;
try {
  kit = {
    tracing: await import("@controlplane/tracing"),
    testing: await import("@controlplane/tracing/testing"),
    hooks: await import("../../libs/grpc/src/tracing.js"),
  };
} catch {
  console.log("(no tracing kit in this tree: measuring `off` only)");
}

type Mode = "off" | "on" | "unsampled";
const MODES: Mode[] = kit ? ["off", "on", "unsampled"] : ["off"];
let running: { stop(): Promise<void> } | undefined;
async function setMode(mode: Mode): Promise<void> {
  await running?.stop();
  running = undefined;
  if (mode === "off" || !kit) return;
  running = kit.tracing.startTracing({
    serviceName: "bench",
    exporter: new kit.testing.DroppingSpanExporter(),
    batch: true,
    env: mode === "unsampled" ? { OTEL_TRACES_SAMPLER: "always_off" } : {},
  });
}

/** In `on`/`unsampled`, `work` runs inside a parent span, as it would under a request. */
function underRequest(work: () => Promise<unknown>): () => Promise<unknown> {
  return async () => {
    const tracer = kit?.tracing.activeTracer();
    if (!tracer) return work();
    const parent = tracer.startSpan("request");
    try {
      return await kit!.tracing.withSpan(parent, work);
    } finally {
      parent.end();
    }
  };
}

// ---- 1. the instrumentation alone ----------------------------------------
if (kit) {
  const { hooks, tracing } = kit;
  const loop = (n: number, body: () => void) => {
    for (let i = 0; i < n / 10; i++) body(); // warm-up
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) body();
    return Number(process.hrtime.bigint() - started) / n; // ns
  };
  const grpcHooks = () => {
    const metadata = new Metadata();
    const client = hooks.startClientSpan("/pkg.Service/Method", "pkg.Service", "Method", "req", metadata);
    const server = hooks.startServerSpan("/pkg.Service/Method", "pkg.Service", "Method", "req", metadata);
    if (server) tracing.context.with(server.context, () => undefined);
    hooks.endServerSpan(server?.span, 0);
    hooks.endClientSpan(client, 0);
  };
  // What the loop costs without the hooks (the Metadata every call makes anyway).
  const reference = loop(2_000_000, () => new Metadata());
  for (const mode of MODES) {
    await setMode(mode);
    const parent = tracing.activeTracer()?.startSpan("request");
    const ns = tracing.withSpan(parent, () => loop(mode === "off" ? 2_000_000 : 100_000, grpcHooks)) - reference;
    parent?.end();
    console.log(
      `${mode.padEnd(9)} gRPC kit hooks per call (client + server): ${ns < 1000 ? `${Math.max(0, ns).toFixed(0)} ns` : `${(ns / 1000).toFixed(1)} µs`}`,
    );
  }
  await setMode("off");
}

// ---- 2. end to end ----------------------------------------------------------
const server = new GrpcServer(log).add(RuntimeRegistryServiceService, {
  getRuntime: async () => ({ runtime: undefined }),
} as unknown as UnaryHandlers<typeof RuntimeRegistryServiceService>);
const port = await server.listen(0, "127.0.0.1");
const client = createClient(RuntimeRegistryServiceService, `127.0.0.1:${port}`);
const db = await createTestDatabase();
// A pool decides at creation whether it traces: one opened with tracing off, one with it on.
const pools = new Map<Mode, DatabasePool>();
for (const mode of MODES) {
  await setMode(mode);
  pools.set(mode, await createDbPool(db.url, { name: `bench-${mode}`, maxSize: 8 }));
}
await setMode("off");

async function sequential(work: () => Promise<unknown>, calls: number): Promise<number> {
  const histogram = hdr.build({ numberOfSignificantValueDigits: 3 });
  for (let i = 0; i < calls; i++) {
    const started = process.hrtime.bigint();
    await work();
    histogram.recordValue(Number(process.hrtime.bigint() - started) / 1_000); // µs
  }
  return histogram.getValueAtPercentile(50);
}

async function throughput(work: () => Promise<unknown>, calls: number): Promise<{ rate: number; cpuUs: number }> {
  let next = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next++ < calls) await work();
    }),
  );
  const used = process.cpuUsage(cpu);
  return { rate: calls / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / calls };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const best = (values: number[], higher = false) => (higher ? Math.max(...values) : Math.min(...values));

try {
  const workloads = [
    ["grpc unary", () => underRequest(() => client.getRuntime({ runtimeId: "00000000-0000-0000-0000-000000000000" }))],
    ["db query", (mode: Mode) => underRequest(() => pools.get(mode)!.query(sql.unsafe`SELECT 1 AS one`))],
  ] as const;
  for (const [name, workFor] of workloads) {
    const figures = new Map(MODES.map((mode) => [mode, { p50: [] as number[], rate: [] as number[], cpu: [] as number[] }]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of MODES) {
        await setMode(mode);
        const work = workFor(mode);
        await sequential(work, CALLS / 4); // warm-up
        const f = figures.get(mode)!;
        f.p50.push(await sequential(work, CALLS));
        const { rate, cpuUs } = await throughput(work, CALLS * 2);
        f.rate.push(rate);
        f.cpu.push(cpuUs);
      }
    }
    for (const [mode, f] of figures) {
      console.log(
        `${mode.padEnd(9)} ${name.padEnd(10)}  p50 best ${best(f.p50).toFixed(0)} / median ${median(f.p50).toFixed(0)} µs;` +
          `  ${IN_FLIGHT} in flight best ${best(f.rate, true).toFixed(0)} / median ${median(f.rate).toFixed(0)} calls/s;` +
          `  CPU best ${best(f.cpu).toFixed(0)} / median ${median(f.cpu).toFixed(0)} µs/call`,
      );
    }
  }
} finally {
  await setMode("off");
  client.close();
  await server.shutdown(1_000);
  for (const pool of pools.values()) await pool.end();
  await db.drop();
}
