import { randomBytes } from "node:crypto";
import * as hdr from "hdr-histogram-js";
import pg from "pg";
import { cpuSeconds } from "../harness.js";
import type { Bench } from "./plane.js";

export interface CycleResult {
  cycles: number;
  perSecond: number;
  /**
   * CPU per cycle, ms: the control plane (all of its processes), each of its
   * processes, Postgres (the backends of the bench's database), this process.
   */
  cpuMs: { plane: number; byProcess: number[]; postgres: number; generator: number };
  claimP50Ms: number;
  claimP99Ms: number;
}

/** Enqueues `perDaemon` tasks for every daemon's agent, the daemons in parallel. */
export async function enqueueForAll(bench: Bench, perDaemon: number): Promise<void> {
  await Promise.all(
    bench.daemons.map(async ({ agentId }) => {
      for (let i = 0; i < perDaemon; i++) await bench.enqueue(agentId);
    }),
  );
}

/**
 * (a)/(b): every daemon drains its queue the way the original daemon's
 * per-runtime poller does when work is there: claim, start, complete, and
 * claim again at once, over HTTP through the gateway. A first drain of
 * `warmupPerDaemon` tasks each is not measured: a fresh process compiles
 * the cycle's code (and fills its caches and pools) on its first cycles, a
 * cost of starting, not of a cycle.
 */
export async function gatewayCycles(bench: Bench, perDaemon: number, warmupPerDaemon: number): Promise<CycleResult> {
  if (warmupPerDaemon > 0) {
    await enqueueForAll(bench, warmupPerDaemon);
    await drainAll(bench, () => undefined);
  }
  await enqueueForAll(bench, perDaemon);
  const claimLatency = hdr.build();
  const pids = bench.plane.pids;
  const backends = await databaseBackends(bench.plane.databaseUrl);
  const before = {
    byProcess: await Promise.all(pids.map((pid) => cpuSeconds([pid]))),
    postgres: await backends.cpuSeconds(),
    generator: process.cpuUsage(),
  };
  const started = performance.now();
  const cycles = await drainAll(bench, (claimMs) => claimLatency.recordValue(Math.max(1, Math.round(claimMs * 1000))));
  const seconds = (performance.now() - started) / 1000;
  const generator = process.cpuUsage(before.generator);
  const byProcess = await Promise.all(pids.map(async (pid, i) => (((await cpuSeconds([pid])) - before.byProcess[i]!) * 1000) / cycles));
  const postgres = (await backends.cpuSeconds()) - before.postgres;
  await backends.close();
  if (cycles !== bench.daemons.length * perDaemon) throw new Error(`${cycles} cycles for ${bench.daemons.length * perDaemon} tasks`);
  return {
    cycles,
    perSecond: cycles / seconds,
    cpuMs: {
      plane: byProcess.reduce((a, b) => a + b, 0),
      byProcess,
      postgres: (postgres * 1000) / cycles,
      generator: (generator.user + generator.system) / 1000 / cycles,
    },
    claimP50Ms: claimLatency.getValueAtPercentile(50) / 1000,
    claimP99Ms: claimLatency.getValueAtPercentile(99) / 1000,
  };
}

/** Every daemon claims, starts and completes until its queue is empty; the cycles run. */
async function drainAll(bench: Bench, onClaim: (claimMs: number) => void): Promise<number> {
  let cycles = 0;
  await Promise.all(
    bench.daemons.map(async ({ runtimeId }) => {
      for (;;) {
        const t0 = performance.now();
        const claim = await bench.post(`/api/daemon/runtimes/${runtimeId}/tasks/claim`, {});
        onClaim(performance.now() - t0);
        if (claim.status !== 200) throw new Error(`claim answered ${claim.status}: ${JSON.stringify(claim.json)}`);
        const task = (claim.json as { task: { id: string } | null }).task;
        if (!task) return;
        const start = await bench.post(`/api/daemon/tasks/${task.id}/start`, {});
        const complete = await bench.post(`/api/daemon/tasks/${task.id}/complete`, { output: "ok" });
        if (start.status !== 200 || complete.status !== 200) throw new Error(`start/complete answered ${start.status}/${complete.status}`);
        cycles++;
      }
    }),
  );
  return cycles;
}

/**
 * CPU of the Postgres backends serving one database: other users of the
 * server (tests, other benchmarks) stay out of the figure. The server's shared
 * processes (WAL writer, checkpointer, autovacuum) are left out with them.
 * Backends are listed at each reading; one that started in between counts
 * from zero, one that ended in between is lost (the pools keep theirs open).
 */
async function databaseBackends(databaseUrl: string) {
  const db = new pg.Client({ connectionString: databaseUrl });
  db.on("error", () => undefined);
  await db.connect();
  const seen = new Map<number, number>();
  return {
    async cpuSeconds(): Promise<number> {
      const { rows } = await db.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
      for (const { pid } of rows) seen.set(pid, await cpuSeconds([pid]));
      return [...seen.values()].reduce((a, b) => a + b, 0);
    },
    close: () => db.end(),
  };
}

const CEILING_SQL = {
  claim: `SELECT (r.claimed).id AS id FROM taskqueue.claim_tasks(ARRAY[$1]::uuid[], ARRAY[$2]::uuid[], ARRAY[$3]::uuid[], 1, '{}',
          interval '90 seconds', interval '45 seconds', 6, ARRAY[$4], interval '24 hours') r WHERE (r.claimed).id IS NOT NULL`,
  start: "UPDATE taskqueue.task SET status = 'running', started_at = now() WHERE id = $1 AND status = 'dispatched'",
  complete: "UPDATE taskqueue.task SET status = 'completed', completed_at = now() WHERE id = $1 AND status = 'running'",
};

/**
 * (c) The raw SQL ceiling: what a claim runs in the database (claim_tasks:
 * dispatch with its lease, isolation check, token insert, resume lookup),
 * then the start and complete UPDATEs, from `connections` raw pg
 * connections: no HTTP, no gRPC, no events. The queue is filled through the
 * task queue as for the gateway phase. With `prepared`, each connection
 * prepares the three statements once, as the services do
 * (DB_PREPARED_STATEMENTS); without, each runs as an unnamed statement,
 * parsed and planned every time (the ceiling before the services did).
 */
export async function rawCeiling(bench: Bench, perDaemon: number, connections: number, prepared = true): Promise<{ cycles: number; perSecond: number }> {
  await enqueueForAll(bench, perDaemon);
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = new pg.Client({ connectionString: bench.plane.databaseUrl });
      client.on("error", () => undefined);
      await client.connect();
      return client;
    }),
  );
  const statement = (name: keyof typeof CEILING_SQL, values: unknown[]) => ({
    ...(prepared ? { name: `ceiling_${name}` } : {}),
    text: CEILING_SQL[name],
    values,
  });
  let cycles = 0;
  let seconds = 0;
  const started = performance.now();
  try {
    await Promise.all(
      clients.map(async (db, i) => {
        const mine = bench.daemons.filter((_, d) => d % connections === i).map((d) => d.runtimeId);
        while (mine.length > 0) {
          const { rows } = await db.query(statement("claim", [mine[0], bench.workspaceId, bench.userId, randomBytes(32).toString("hex")]));
          const id = rows[0]?.id as string | undefined;
          if (!id) {
            mine.shift();
            continue;
          }
          await db.query(statement("start", [id]));
          await db.query(statement("complete", [id]));
          cycles++;
        }
      }),
    );
    seconds = (performance.now() - started) / 1000;
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
  if (cycles !== bench.daemons.length * perDaemon) throw new Error(`ceiling: ${cycles} cycles for ${bench.daemons.length * perDaemon} tasks`);
  return { cycles, perSecond: cycles / seconds };
}
