import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import * as hdr from "hdr-histogram-js";
import { closeAll, openDaemonSocket } from "../sockets.js";
import type { Bench, Daemon } from "./plane.js";

/**
 * Dispatch latency: from just before the task is enqueued (gRPC, straight to
 * the task queue) to the claim that answers it having returned, i.e. the
 * task in the daemon's hands, for an idle daemon (its queue empty, nothing
 * else in flight for it), three ways:
 * - socket: the daemon holds GET /api/daemon/ws and claims over HTTP when
 *   `daemon:task_available` names its runtime (the hint only wakes it);
 * - long-poll: the daemon waits in POST .../tasks/claim?wait=25;
 * - polling: the original daemon's per-runtime poller (contract §10.4):
 *   first claim after FNV-1a(runtime id) mod P, then claim, and on
 *   `{"task":null}` sleep P; a task loops at once. The daemon's P is 30 s;
 *   here P is shortened (its latency is about uniform over [0, P) plus one
 *   claim, so it scales with P).
 */
export interface DispatchResult {
  /** µs histogram of the samples kept. */
  latency: hdr.Histogram;
  /** Samples whose task did not reach the daemon within the sample's bound, or another task did. */
  lost: number;
}

export interface DispatchSettings {
  samples: number;
  warmup: number;
  /** Pause between one sample's claim and the next enqueue (socket and long-poll take one sample at a time). */
  gapMs: number;
  /** Polling's P. */
  pollIntervalMs: number;
  /**
   * Daemons polling. Each makes an empty claim every P: with P shortened, all
   * of the cycle phase's daemons would load the plane many times more than
   * a real fleet of that size polling every 30 s.
   */
  pollers: number;
}

/** A sample with no answer in this long counts as lost: far above any wake-up or claim. */
const SAMPLE_BOUND_MS = 5_000;

type Arrival = { at: number; taskId: string };

/** Takes samples one at a time, daemons in turn (so each has long re-armed when its turn comes back). */
async function oneAtATime(
  bench: Bench,
  settings: DispatchSettings,
  expect: (runtimeId: string, arrived: (arrival: Arrival) => void) => void,
): Promise<DispatchResult> {
  const latency = hdr.build();
  let lost = 0;
  for (let i = 0; i < settings.warmup + settings.samples; i++) {
    const daemon = bench.daemons[i % bench.daemons.length]!;
    const arrival = new Promise<Arrival>((resolve) => expect(daemon.runtimeId, resolve));
    const t0 = performance.now();
    const taskId = await bench.enqueue(daemon.agentId);
    const got = await Promise.race([arrival, sleep(SAMPLE_BOUND_MS, undefined)]);
    if (i >= settings.warmup) {
      if (!got || got.taskId !== taskId) lost++;
      else latency.recordValue(Math.max(1, Math.round((got.at - t0) * 1000)));
    }
    // A task not claimed would wait for the daemon's next sample: take it now.
    if (!got) await bench.post(`/api/daemon/runtimes/${daemon.runtimeId}/tasks/claim`, {});
    await sleep(settings.gapMs);
  }
  return { latency, lost };
}

/** The claim a woken (or polling) daemon makes; when it returned with a task. */
async function claimNow(bench: Bench, runtimeId: string, query = "", signal?: AbortSignal): Promise<Arrival | undefined> {
  const answer = await bench.post(`/api/daemon/runtimes/${runtimeId}/tasks/claim${query}`, {}, signal);
  const at = performance.now();
  if (answer.status !== 200) throw new Error(`claim answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  const task = (answer.json as { task: { id: string } | null }).task;
  return task ? { at, taskId: task.id } : undefined;
}

export async function socketDispatch(bench: Bench, settings: DispatchSettings): Promise<DispatchResult> {
  const waiting = new Map<string, (arrival: Arrival) => void>();
  const sockets = await Promise.all(
    bench.daemons.map(async ({ runtimeId }) => {
      const ws = await openDaemonSocket(bench.plane.gatewayUrl, bench.token, [runtimeId]);
      ws.on("message", (data) => {
        const frame = JSON.parse(String(data)) as { type: string; payload?: { runtime_id?: string } };
        const named = frame.payload?.runtime_id ?? "";
        const arrived = frame.type === "daemon:task_available" ? waiting.get(named) : undefined;
        if (!arrived) return;
        waiting.delete(named);
        // A failed claim leaves the sample unanswered: it counts as lost.
        void claimNow(bench, named).then(
          (arrival) => arrival && arrived(arrival),
          () => undefined,
        );
      });
      return ws;
    }),
  );
  try {
    return await oneAtATime(bench, settings, (runtimeId, arrived) => waiting.set(runtimeId, arrived));
  } finally {
    await closeAll(sockets);
  }
}

export async function longPollDispatch(bench: Bench, settings: DispatchSettings): Promise<DispatchResult> {
  const waiting = new Map<string, (arrival: Arrival) => void>();
  const stop = new AbortController();
  // Every daemon's claim in flight listens to it.
  setMaxListeners(bench.daemons.length + 1, stop.signal);
  const failures: unknown[] = [];
  const pollers = bench.daemons.map(async ({ runtimeId }) => {
    while (!stop.signal.aborted) {
      let arrival: Arrival | undefined;
      try {
        arrival = await claimNow(bench, runtimeId, "?wait=25", stop.signal);
      } catch (error) {
        // Aborted at the end; otherwise this daemon stops and its samples count as lost.
        if (!stop.signal.aborted) failures.push(error);
        return;
      }
      if (arrival) waiting.get(runtimeId)?.(arrival);
    }
  });
  const samples = await oneAtATime(bench, settings, (runtimeId, arrived) => waiting.set(runtimeId, arrived)).finally(async () => {
    stop.abort();
    await Promise.all(pollers);
  });
  // Checked after the run, not in a finally: a throw there would hide the run's own error.
  if (failures.length > 0) throw new Error(`${failures.length} long-poll claims failed`, { cause: failures[0] });
  return samples;
}

/**
 * Polling: samples start at random moments (exponential gaps, one per
 * daemon every 2 P on average), each for a daemon picked at random among
 * those with none outstanding, and enqueue at a uniform point of its
 * poller's period.
 */
export async function pollingDispatch(bench: Bench, settings: DispatchSettings): Promise<DispatchResult> {
  const P = settings.pollIntervalMs;
  const waiting = new Map<string, (arrival: Arrival) => void>();
  const stop = new AbortController();
  const napped = (ms: number) =>
    sleep(ms, undefined, { signal: stop.signal }).then(
      () => true,
      () => false,
    );
  const failures: unknown[] = [];
  const daemons = bench.daemons.slice(0, settings.pollers);
  // Every poller's nap listens to it.
  setMaxListeners(daemons.length + 1, stop.signal);
  const pollers = daemons.map(async ({ runtimeId }) => {
    try {
      if (!(await napped(fnv1a(runtimeId) % P))) return;
      while (!stop.signal.aborted) {
        const arrival = await claimNow(bench, runtimeId);
        if (arrival) {
          waiting.get(runtimeId)?.(arrival);
          continue;
        }
        if (!(await napped(P))) return;
      }
    } catch (error) {
      failures.push(error);
    }
  });
  const latency = hdr.build();
  let lost = 0;
  const idle = new Set<Daemon>(daemons);
  const outstanding = new Set<Promise<void>>();
  try {
    for (let i = 0; i < settings.warmup + settings.samples; i++) {
      await sleep((-Math.log(1 - Math.random()) * 2 * P) / daemons.length);
      while (idle.size === 0) await Promise.race(outstanding);
      const daemon = [...idle][Math.floor(Math.random() * idle.size)]!;
      idle.delete(daemon);
      const keep = i >= settings.warmup;
      const sample = (async () => {
        try {
          await oneSample(daemon, keep);
        } catch (error) {
          failures.push(error);
        }
        idle.add(daemon);
      })();
      outstanding.add(sample);
      void sample.finally(() => outstanding.delete(sample));
    }
    await Promise.all(outstanding);
  } finally {
    stop.abort();
    await Promise.all(pollers);
  }
  if (failures.length > 0) throw new Error(`${failures.length} polling samples or claims failed`, { cause: failures[0] });
  return { latency, lost };

  async function oneSample(daemon: Daemon, keep: boolean): Promise<void> {
    // Picked soon after its last claim, a daemon would be early in its period
    // (its poller naps P from that claim): a uniform [0, P) more makes the
    // enqueue's place in the period uniform.
    await sleep(Math.random() * P);
    const arrival = new Promise<Arrival>((resolve) => waiting.set(daemon.runtimeId, resolve));
    const t0 = performance.now();
    const taskId = await bench.enqueue(daemon.agentId);
    // A poller claims within P plus one claim; twice that and more is lost.
    const got = await Promise.race([arrival, sleep(2 * P + SAMPLE_BOUND_MS, undefined)]);
    waiting.delete(daemon.runtimeId);
    if (keep && (!got || got.taskId !== taskId)) lost++;
    else if (keep && got) latency.recordValue(Math.max(1, Math.round((got.at - t0) * 1000)));
  }
}

/** FNV-1a, 32 bits, over the id's UTF-8 bytes: the original daemon's poll offset. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}
