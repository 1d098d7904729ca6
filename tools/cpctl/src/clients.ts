import { createClient } from "@controlplane/grpc";
import { LivenessServiceService } from "@controlplane/proto/liveness/v1/liveness";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { TaskQueueServiceService } from "@controlplane/proto/taskqueue/v1/taskqueue";

export interface Addresses {
  registry: string;
  profiles: string;
  tasks: string;
  liveness: string;
}

export function identityClient(addresses: Addresses) {
  return createClient(IdentityServiceService, addresses.registry, { deadlineMs: 10_000 });
}

export function profilesClient(addresses: Addresses) {
  return createClient(ProfileCatalogServiceService, addresses.profiles, { deadlineMs: 10_000 });
}

export function registryClient(addresses: Addresses) {
  return createClient(RuntimeRegistryServiceService, addresses.registry, { deadlineMs: 10_000 });
}

export function tasksClient(addresses: Addresses) {
  return createClient(TaskQueueServiceService, addresses.tasks, { deadlineMs: 10_000 });
}

export function livenessClient(addresses: Addresses) {
  return createClient(LivenessServiceService, addresses.liveness, { deadlineMs: 10_000 });
}
