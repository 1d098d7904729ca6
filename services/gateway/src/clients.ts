import { GATEWAY_GRPC_DEADLINE_MS } from "@controlplane/config";
import { createClient, status, type PromiseClient } from "@controlplane/grpc";
import { LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import type { HeartbeatRequest, HeartbeatResponse } from "@controlplane/proto/liveness/v1/liveness";
import { CodedError, MicroBatcher } from "./batcher.js";

/** The gRPC services the gateway translates to. */
export interface GatewayClients {
  identity: PromiseClient<typeof IdentityServiceService>;
  profiles: PromiseClient<typeof ProfileCatalogServiceService>;
  registry: PromiseClient<typeof RuntimeRegistryServiceService>;
  tasks: PromiseClient<typeof TaskQueueServiceService>;
  liveness: PromiseClient<typeof LivenessServiceService>;
  /** Heartbeats go through this, many per liveness call. */
  heartbeats: MicroBatcher<HeartbeatRequest, HeartbeatResponse>;
  /** First lookups of runtimes' workspaces, many per registry call (undefined: no such runtime). */
  runtimeWorkspaces: MicroBatcher<string, string | undefined>;
}

/** Beats per HeartbeatBatch call. */
const HEARTBEAT_BATCH = 256;
/** Runtime ids per GetRuntimeWorkspaces call (the registry takes up to 1,000). */
const LOOKUP_BATCH = 256;

const DEADLINE_MS = GATEWAY_GRPC_DEADLINE_MS;
/** A daemon's request during a service's restart waits for it (within the deadline) rather than failing. */
const WAIT_FOR_READY = true;

export function createGatewayClients(
  addresses: { registry: string; profileCatalog: string; taskQueue: string; liveness: string },
  /** HeartbeatBatch calls go out at most this often (0: one call per loop turn with beats). */
  heartbeatBatchIntervalMs = 0,
): GatewayClients {
  const liveness = createClient(LivenessServiceService, addresses.liveness, {
    deadlineMs: DEADLINE_MS,
    waitForReady: WAIT_FOR_READY,
  });
  const registry = createClient(RuntimeRegistryServiceService, addresses.registry, {
    deadlineMs: DEADLINE_MS,
    waitForReady: WAIT_FOR_READY,
  });
  return {
    identity: createClient(IdentityServiceService, addresses.registry, {
      deadlineMs: DEADLINE_MS,
      waitForReady: WAIT_FOR_READY,
    }),
    profiles: createClient(ProfileCatalogServiceService, addresses.profileCatalog, {
      deadlineMs: DEADLINE_MS,
      waitForReady: WAIT_FOR_READY,
    }),
    registry,
    tasks: createClient(TaskQueueServiceService, addresses.taskQueue, {
      deadlineMs: DEADLINE_MS,
      waitForReady: WAIT_FOR_READY,
    }),
    liveness,
    heartbeats: new MicroBatcher(
      async (beats) => {
        const { outcomes } = await liveness.heartbeatBatch({ beats });
        return outcomes.map(({ outcome }) =>
          outcome?.$case === "ack"
            ? { ok: true, value: outcome.value }
            : { ok: false, error: new CodedError(outcome?.value.code ?? status.INTERNAL, outcome?.value.message ?? "no outcome for this beat") },
        );
      },
      { maxBatch: HEARTBEAT_BATCH, minIntervalMs: heartbeatBatchIntervalMs },
    ),
    runtimeWorkspaces: new MicroBatcher(
      async (runtimeIds) => {
        const { workspaceIds } = await registry.getRuntimeWorkspaces({ runtimeIds });
        return runtimeIds.map((id) => ({ ok: true, value: workspaceIds[id] }));
      },
      { maxBatch: LOOKUP_BATCH },
    ),
  };
}

export function closeGatewayClients(clients: GatewayClients): void {
  clients.identity.close();
  clients.profiles.close();
  clients.registry.close();
  clients.tasks.close();
  clients.liveness.close();
}
