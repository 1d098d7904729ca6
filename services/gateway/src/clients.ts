import { createClient, type PromiseClient } from "@controlplane/grpc";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";

/** The gRPC services the gateway translates to. */
export interface GatewayClients {
  identity: PromiseClient<typeof IdentityServiceService>;
  profiles: PromiseClient<typeof ProfileCatalogServiceService>;
}

/** Below the daemon's 30 s HTTP timeout, so it sees our answer, not its own timeout. */
const DEADLINE_MS = 10_000;

export function createGatewayClients(addresses: { registry: string; profileCatalog: string }): GatewayClients {
  return {
    identity: createClient(IdentityServiceService, addresses.registry, {
      deadlineMs: DEADLINE_MS,
      idempotent: ["getWorkspace", "getWorkspaceRepos", "listWorkspaces", "getMembership", "resolveToken", "listTokens"],
    }),
    profiles: createClient(ProfileCatalogServiceService, addresses.profileCatalog, {
      deadlineMs: DEADLINE_MS,
      idempotent: ["listProfiles", "getProfile"],
    }),
  };
}

export function closeGatewayClients(clients: GatewayClients): void {
  clients.identity.close();
  clients.profiles.close();
}
