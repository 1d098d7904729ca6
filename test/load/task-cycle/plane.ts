import { randomUUID } from "node:crypto";
import { Pool } from "undici";
import { createClient, type PromiseClient } from "@controlplane/grpc";
import { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { benchAgent, loadRuntimes, startControlPlane, type ControlPlane } from "../harness.js";

/** How the control plane runs: (a) all in one process, (b) one process per service, as the chart deploys it. */
export type Shape = "all-in-one" | "per-service";

/** Names of the per-service processes, in the harness's start order (its `pids`). */
export const SERVICES = ["registry", "profile-catalog", "task-queue", "liveness", "gateway"] as const;

export interface Daemon {
  runtimeId: string;
  agentId: string;
}

/**
 * One started control plane with what every phase needs: a member's token,
 * `daemons` simulated daemons of the original's shape (one runtime, one
 * agent each), and `beatRuntimes` more runtimes loaded straight into the
 * tables for the heartbeat phase.
 */
export interface Bench {
  shape: Shape;
  plane: ControlPlane;
  workspaceId: string;
  userId: string;
  token: string;
  daemons: Daemon[];
  beatRuntimes: string[];
  /** Keep-alive HTTP connections to the gateway, one per daemon and a few more (as each daemon keeps its own). */
  http: Pool;
  registry: PromiseClient<typeof RuntimeRegistryServiceService>;
  tasks: PromiseClient<typeof TaskQueueServiceService>;
  post(path: string, body: unknown, signal?: AbortSignal): Promise<{ status: number; json: unknown }>;
  /** Enqueues one task for an agent (gRPC, straight to the task queue); its id. */
  enqueue(agentId: string): Promise<string>;
  /** One HTTP heartbeat for every daemon's runtime, so the claim's freshness gate (150 s) keeps passing them. */
  refreshDaemons(): Promise<void>;
  stop(): Promise<void>;
}

export async function startBench(shape: Shape, daemonCount: number, beatRuntimeCount: number): Promise<Bench> {
  const workspaceId = randomUUID();
  const userId = randomUUID();
  const beatRuntimes = Array.from({ length: beatRuntimeCount }, () => randomUUID());
  const plane = await startShape(shape, (databaseUrl) => loadRuntimes(databaseUrl, workspaceId, userId, beatRuntimes));
  const identity = createClient(IdentityServiceService, plane.registryAddr, { deadlineMs: 30_000 });
  const registry = createClient(RuntimeRegistryServiceService, plane.registryAddr, { deadlineMs: 30_000 });
  const tasks = createClient(TaskQueueServiceService, plane.tasksAddr, { deadlineMs: 30_000 });
  const http = new Pool(new URL(plane.gatewayUrl).origin, { connections: daemonCount + 16, pipelining: 1 });
  try {
    const { token } = await identity.issuePersonalAccessToken({ userId, name: "bench-tasks", ttlSeconds: 3600 });
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const post = async (path: string, body: unknown, signal?: AbortSignal) => {
      const response = await http.request({ path, method: "POST", headers, body: JSON.stringify(body), signal });
      return { status: response.statusCode, json: (await response.body.json()) as unknown };
    };
    const daemons = await Promise.all(
      Array.from({ length: daemonCount }, async (_, i): Promise<Daemon> => {
        const answer = await post("/api/daemon/register", {
          workspace_id: workspaceId,
          daemon_id: `bench-daemon-${i}`,
          runtimes: [{ type: "claude", version: "1", status: "online" }],
        });
        if (answer.status !== 200) throw new Error(`register answered ${answer.status}: ${JSON.stringify(answer.json)}`);
        const runtimeId = (answer.json as { runtimes: Array<{ id: string }> }).runtimes[0]!.id;
        return { runtimeId, agentId: await benchAgent(registry, { workspaceId, runtimeId, name: `agent-${i}`, ownerId: userId }) };
      }),
    );
    return {
      shape,
      plane,
      workspaceId,
      userId,
      token,
      daemons,
      beatRuntimes,
      http,
      registry,
      tasks,
      post,
      async enqueue(agentId) {
        const { task } = await tasks.enqueueTask({ agentId, priority: 0, issueId: randomUUID(), forceFreshSession: false, maxAttempts: 0 });
        return task!.id;
      },
      async refreshDaemons() {
        await Promise.all(
          daemons.map(async ({ runtimeId }) => {
            const beat = await post("/api/daemon/heartbeat", { runtime_id: runtimeId, supports_batch_import: true });
            if (beat.status !== 200) throw new Error(`heartbeat answered ${beat.status}`);
          }),
        );
      },
      async stop() {
        await http.close();
        identity.close();
        registry.close();
        tasks.close();
        await plane.stop();
      },
    };
  } catch (error) {
    await http.close();
    identity.close();
    registry.close();
    tasks.close();
    await plane.stop();
    throw new Error(`setting up the ${shape} control plane failed`, { cause: error });
  }
}

/**
 * The harness picks the shape from BENCH_ALL_IN_ONE when it starts the
 * processes; this run wants both shapes, so it is set for the start alone.
 * Sweeps are held off: the heartbeat phase's runtimes beat only while it
 * runs, and the sweeper turning them offline in between would make their
 * next beats status flips (a fleet in its steady state has none).
 */
async function startShape(shape: Shape, beforeStart: (databaseUrl: string) => Promise<void>): Promise<ControlPlane> {
  const before = process.env.BENCH_ALL_IN_ONE;
  process.env.BENCH_ALL_IN_ONE = shape === "all-in-one" ? "1" : "0";
  try {
    return await startControlPlane({ SWEEP_GRACE_MS: "86400000" }, beforeStart);
  } finally {
    if (before === undefined) delete process.env.BENCH_ALL_IN_ONE;
    else process.env.BENCH_ALL_IN_ONE = before;
  }
}
