import { ReadThrough, TtlCache } from "@controlplane/cache";
import type { PromiseClient } from "@controlplane/grpc";
import type { IdentityServiceService, Workspace } from "@controlplane/proto/registry/v1/identity";
import type { Agent, Runtime, RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";

/**
 * The registry's rows the claim path needs, read through caches: workspace
 * repos and context change rarely and are reused for `ttlMs`. Runtimes and
 * agents are kept longer, since their events drop them the moment they
 * change (`agent.upserted`; a runtime's registered, online, offline, merged
 * and deleted events: see cache-events.ts), so claims see fresh data.
 */
export class RegistryReads {
  readonly runtimes: ReadThrough<Runtime>;
  readonly workspaces: ReadThrough<Workspace>;
  readonly agents: ReadThrough<Agent>;

  constructor(registry: PromiseClient<typeof RuntimeRegistryServiceService>, identity: PromiseClient<typeof IdentityServiceService>, ttlMs: number) {
    // Invalidated by events, so it may live longer than the workspaces.
    this.runtimes = new ReadThrough(new TtlCache(ttlMs * 6), async (runtimeId) => (await registry.getRuntime({ runtimeId })).runtime!);
    this.workspaces = new ReadThrough(new TtlCache(ttlMs), async (workspaceId) => (await identity.getWorkspace({ workspaceId })).workspace!);
    // Invalidated by events, so it may live longer than the others.
    this.agents = new ReadThrough(new TtlCache(ttlMs * 6), async (agentId) => (await registry.getAgent({ agentId })).agent!);
  }
}
