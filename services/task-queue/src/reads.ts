import { ReadThrough, TtlCache } from "@controlplane/cache";
import type { PromiseClient } from "@controlplane/grpc";
import type { IdentityServiceService, Workspace } from "@controlplane/proto/registry/v1/identity";
import type { Agent, Runtime, RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";

/**
 * The registry's rows the claim path needs, read through short-lived caches:
 * a runtime's workspace never changes and its owner rarely does; workspace
 * repos and context change rarely. Agents are cached too but dropped the
 * moment `agent.upserted` says they changed, so claims see fresh agent data.
 */
export class RegistryReads {
  readonly runtimes: ReadThrough<Runtime>;
  readonly workspaces: ReadThrough<Workspace>;
  readonly agents: ReadThrough<Agent>;

  constructor(
    registry: PromiseClient<typeof RuntimeRegistryServiceService>,
    identity: PromiseClient<typeof IdentityServiceService>,
    ttlMs: number,
  ) {
    this.runtimes = new ReadThrough(new TtlCache(ttlMs), async (runtimeId) => (await registry.getRuntime({ runtimeId })).runtime!);
    this.workspaces = new ReadThrough(new TtlCache(ttlMs), async (workspaceId) => (await identity.getWorkspace({ workspaceId })).workspace!);
    // Invalidated by events, so it may live longer than the others.
    this.agents = new ReadThrough(new TtlCache(ttlMs * 6), async (agentId) => (await registry.getAgent({ agentId })).agent!);
  }
}
