import * as hdr from "hdr-histogram-js";
import { type ControlPlane, cpuSeconds } from "../harness.js";
import type { Bench } from "./plane.js";

export interface BeatResult {
  /** Beats answered 200 in the measured window. */
  beats: number;
  perSecond: number;
  /** Control-plane CPU (all of its processes) per beat, ms; and each process's. */
  cpuMs: number;
  byProcess: number[];
  generatorCpuMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Answered other than 200, or due while too many were in flight (the generator fell behind). */
  failed: number;
  missed: number;
}

/** Beats in flight at most; past it the plane is not keeping up and beats count as missed. */
const MAX_IN_FLIGHT = 512;

/**
 * The heartbeat measure: the bench's loaded runtimes beat over HTTP
 * (POST /api/daemon/heartbeat, as the original daemon does every 15 s),
 * round robin at `ratePerSecond` in all, spread evenly, so each runtime
 * beats every runtimes / rate seconds. First one pass over every runtime
 * (the gateway meets each once: a cold lookup, not the steady state) and
 * `warmupMs` more (a fresh process compiles its heartbeat path, and every
 * runtime's first beat in it writes the shared store and queues a database
 * flush, which a runtime then does every 30 and 60 s, not every few beats),
 * then `measureMs` measured: control-plane CPU over the beats answered.
 */
export async function heartbeatCpu(
  bench: Pick<Bench, "beatRuntimes" | "post"> & { plane: Pick<ControlPlane, "pids"> },
  ratePerSecond: number,
  { measureMs, warmupMs }: { measureMs: number; warmupMs: number },
): Promise<BeatResult> {
  const runtimes = bench.beatRuntimes;
  let cursor = 0;
  const latency = hdr.build();
  const counts = { ok: 0, failed: 0, missed: 0 };
  let recording = false;

  async function beat(runtimeId: string): Promise<void> {
    const t0 = performance.now();
    const answer = await bench.post("/api/daemon/heartbeat", { runtime_id: runtimeId, supports_batch_import: true });
    if (!recording) return;
    if (answer.status === 200) {
      counts.ok++;
      latency.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    } else {
      counts.failed++;
    }
  }

  /** Beats at the rate for `durationMs`, following the clock (a late timer tick is made up at the next). */
  async function paced(durationMs: number): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const started = performance.now();
    let sent = 0;
    for (;;) {
      const elapsed = performance.now() - started;
      const due = Math.floor((Math.min(elapsed, durationMs) * ratePerSecond) / 1000);
      for (; sent < due; sent++) {
        if (inFlight.size >= MAX_IN_FLIGHT) {
          if (recording) counts.missed++;
          continue;
        }
        const one = beat(runtimes[cursor++ % runtimes.length]!);
        inFlight.add(one);
        void one.finally(() => inFlight.delete(one));
      }
      if (elapsed >= durationMs) break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await Promise.all(inFlight);
  }

  await paced((runtimes.length * 1000) / ratePerSecond + warmupMs);
  const pids = bench.plane.pids;
  const before = await Promise.all(pids.map((pid) => cpuSeconds([pid])));
  const generatorBefore = process.cpuUsage();
  recording = true;
  const started = performance.now();
  await paced(measureMs);
  const seconds = (performance.now() - started) / 1000;
  recording = false;
  const generator = process.cpuUsage(generatorBefore);
  const byProcess = await Promise.all(pids.map(async (pid, i) => (((await cpuSeconds([pid])) - before[i]!) * 1000) / counts.ok));
  return {
    beats: counts.ok,
    perSecond: counts.ok / seconds,
    cpuMs: byProcess.reduce((a, b) => a + b, 0),
    byProcess,
    generatorCpuMs: (generator.user + generator.system) / 1000 / counts.ok,
    p50Ms: latency.getValueAtPercentile(50) / 1000,
    p99Ms: latency.getValueAtPercentile(99) / 1000,
    failed: counts.failed,
    missed: counts.missed,
  };
}
