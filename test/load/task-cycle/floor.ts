import { fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Pool } from "undici";
import { cpuSeconds } from "../harness.js";
import { heartbeatCpu } from "./beats.js";
import type { FloorAnswers } from "./floor-server.js";
import type { Bench } from "./plane.js";

export interface FloorResult {
  /** CPU of the bare server per cycle (three requests), at the all-in-one's rate of the same round. */
  cycleCpuMs: number;
  cyclesPerSecond: number;
  /** CPU of the bare server per heartbeat, at the heartbeat phase's rate. */
  beatCpuMs: number;
}

/**
 * One answer of each kind the cycle and the heartbeat get from the running
 * plane (a claim that handed out a task, its start and completion, a beat),
 * for the floor's server to give back.
 */
export async function recordAnswers(bench: Bench): Promise<FloorAnswers> {
  const { runtimeId, agentId } = bench.daemons[0]!;
  await bench.enqueue(agentId);
  const claim = await bench.post(`/api/daemon/runtimes/${runtimeId}/tasks/claim`, {});
  const taskId = (claim.json as { task: { id: string } | null }).task?.id;
  if (claim.status !== 200 || !taskId) throw new Error(`recording answers: claim answered ${claim.status}: ${JSON.stringify(claim.json)}`);
  const start = await bench.post(`/api/daemon/tasks/${taskId}/start`, {});
  const complete = await bench.post(`/api/daemon/tasks/${taskId}/complete`, { output: "ok" });
  const heartbeat = await bench.post("/api/daemon/heartbeat", { runtime_id: runtimeId, supports_batch_import: true });
  for (const [name, answer] of Object.entries({ start, complete, heartbeat })) {
    if (answer.status !== 200) throw new Error(`recording answers: ${name} answered ${answer.status}`);
  }
  return { claim: claim.json, start: start.json, complete: complete.json, heartbeat: heartbeat.json };
}

/**
 * (d) The HTTP floor: what the same requests cost a bare fastify server in
 * a process of its own, answering with recorded answers (no auth, gRPC,
 * database or events), driven as the plane is: `daemons` keep-alive
 * connections running claim -> start -> complete paced at `cyclesPerSecond`
 * (the all-in-one's rate in the same round: a server's cost per request
 * depends on how many requests share a wake-up), then beats at `beatRate`.
 * The part of a target below it is out of reach of anything behind HTTP.
 */
export async function httpFloor(
  answers: FloorAnswers,
  settings: { daemons: number; cycles: number; cyclesPerSecond: number; beatRate: number; beatMs: number; beatWarmupMs: number; beatRuntimes: number },
): Promise<FloorResult> {
  const child = fork(new URL("./floor-server.ts", import.meta.url), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    const ready = new Promise<{ port: number }>((resolve, reject) => {
      child.once("message", (message) => resolve(message as { port: number }));
      child.once("exit", (code) => reject(new Error(`the floor's server exited (${code}) before it listened`)));
    });
    child.send(answers);
    const { port } = await ready;
    const http = new Pool(`http://127.0.0.1:${port}`, { connections: settings.daemons + 16, pipelining: 1 });
    try {
      const headers = { authorization: "Bearer floor", "content-type": "application/json" };
      const post = async (path: string, body: unknown) => {
        const response = await http.request({ path, method: "POST", headers, body: JSON.stringify(body) });
        return { status: response.statusCode, json: (await response.body.json()) as unknown };
      };
      const pids = [child.pid!];
      const taskId = randomUUID();
      const cycle = async (runtimeId: string) => {
        for (const [path, body] of [
          [`/api/daemon/runtimes/${runtimeId}/tasks/claim`, {}],
          [`/api/daemon/tasks/${taskId}/start`, {}],
          [`/api/daemon/tasks/${taskId}/complete`, { output: "ok" }],
        ] as const) {
          const answer = await post(path, body);
          if (answer.status !== 200) throw new Error(`the floor's server answered ${path} ${answer.status}`);
        }
      };
      /** `count` cycles, cycle n (of daemon n mod daemons) due at n / rate s. */
      const paced = async (count: number) => {
        const started = performance.now();
        await Promise.all(
          Array.from({ length: settings.daemons }, async (_, d) => {
            const runtimeId = randomUUID();
            for (let n = d; n < count; n += settings.daemons) {
              const wait = started + (n * 1000) / settings.cyclesPerSecond - performance.now();
              if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
              await cycle(runtimeId);
            }
          }),
        );
        return (performance.now() - started) / 1000;
      };
      await paced(Math.min(settings.cycles, 4 * settings.daemons));
      const before = await cpuSeconds(pids);
      const seconds = await paced(settings.cycles);
      const cycleCpuMs = (((await cpuSeconds(pids)) - before) * 1000) / settings.cycles;
      const beatRuntimes = Array.from({ length: settings.beatRuntimes }, () => randomUUID());
      const beats = await heartbeatCpu({ beatRuntimes, post, plane: { pids } }, settings.beatRate, {
        measureMs: settings.beatMs,
        warmupMs: settings.beatWarmupMs,
      });
      if (beats.failed > 0) throw new Error(`the floor's server failed ${beats.failed} beats`);
      return { cycleCpuMs, cyclesPerSecond: settings.cycles / seconds, beatCpuMs: beats.cpuMs };
    } finally {
      await http.close();
    }
  } finally {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
}
