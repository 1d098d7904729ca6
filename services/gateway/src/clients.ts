import { GATEWAY_GRPC_DEADLINE_MS } from "@controlplane/config";
import { createClient, type PromiseClient } from "@controlplane/grpc";
import { LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";
import { HeartbeatBatcher } from "./heartbeat-batcher.js";

/** The gRPC services the gateway translates to. */
export interface GatewayClients {
  identity: PromiseClient<typeof IdentityServiceService>;
  profiles: PromiseClient<typeof ProfileCatalogServiceService>;
  registry: PromiseClient<typeof RuntimeRegistryServiceService>;
  tasks: PromiseClient<typeof TaskQueueServiceService>;
  liveness: PromiseClient<typeof LivenessServiceService>;
  /** Heartbeats go through this, many per liveness call. */
  heartbeats: HeartbeatBatcher;
}

const DEADLINE_MS = GATEWAY_GRPC_DEADLINE_MS;
/** A daemon's request during a service's restart waits for it (within the deadline) rather than failing. */
const WAIT_FOR_READY = true;

export function createGatewayClients(addresses: {
  registry: string;
  profileCatalog: string;
  taskQueue: string;
  liveness: string;
}): GatewayClients {
  const liveness = createClient(LivenessServiceService, addresses.liveness, {
    deadlineMs: DEADLINE_MS,
    waitForReady: WAIT_FOR_READY,
    idempotent: ["getRuntimeLiveness"],
  });
  return {
    identity: createClient(IdentityServiceService, addresses.registry, {
      deadlineMs: DEADLINE_MS,
      waitForReady: WAIT_FOR_READY,
      idempotent: ["getWorkspace", "getWorkspaceRepos", "listWorkspaces", "getMembership", "resolveToken", "listTokens"],
    }),
    profiles: createClient(ProfileCatalogServiceService, addresses.profileCatalog, {
      deadlineMs: DEADLINE_MS,
      waitForReady: WAIT_FOR_READY,
      idempotent: ["listProfiles", "getProfile"],
    }),
    registry: createClient(RuntimeRegistryServiceService, addresses.registry, {
      deadlineMs: DEADLINE_MS,
      waitForReady: WAIT_FOR_READY,
      idempotent: ["getRuntime", "listRuntimes", "getAgent", "listAgents"],
    }),
    tasks: createClient(TaskQueueServiceService, addresses.taskQueue, {
      deadlineMs: DEADLINE_MS,
      waitForReady: WAIT_FOR_READY,
      idempotent: ["getTask", "listMessages", "listPendingTasks", "listTasks", "getIssueUsage", "getWorkItem", "resolveTaskToken"],
    }),
    liveness,
    heartbeats: new HeartbeatBatcher((request) => liveness.heartbeatBatch(request)),
  };
}

export function closeGatewayClients(clients: GatewayClients): void {
  clients.identity.close();
  clients.profiles.close();
  clients.registry.close();
  clients.tasks.close();
  clients.liveness.close();
}
