import type { UnaryHandlers } from "@controlplane/grpc";
import type { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import * as profiles from "./profiles.js";

/** The gRPC face of the catalog: decode, call the domain, encode. */
export function profileCatalogHandlers(deps: profiles.ProfileDeps): UnaryHandlers<typeof ProfileCatalogServiceService> {
  return {
    async listProfiles(req) {
      return { profiles: await profiles.listProfiles(deps, req.workspaceId, req.enabledOnly) };
    },
    async getProfile(req) {
      return { profile: await profiles.getProfile(deps, req.workspaceId, req.profileId) };
    },
    async createProfile(req) {
      const profile = await profiles.createProfile(
        deps,
        req.workspaceId,
        {
          displayName: req.displayName,
          protocolFamily: req.protocolFamily,
          commandName: req.commandName,
          description: req.description,
          fixedArgs: req.fixedArgs,
          visibility: req.visibility,
          enabled: req.enabled,
        },
        req.createdBy,
      );
      return { profile };
    },
    async updateProfile(req) {
      const profile = await profiles.updateProfile(
        deps,
        req.workspaceId,
        req.profileId,
        {
          displayName: req.displayName,
          commandName: req.commandName,
          description: req.description,
          fixedArgs: req.fixedArgs?.values,
          visibility: req.visibility,
          enabled: req.enabled,
        },
        req.actorId,
      );
      return { profile };
    },
    async deleteProfile(req) {
      return { detachedRuntimeCount: await profiles.deleteProfile(deps, req.workspaceId, req.profileId, req.actorId) };
    },
  };
}
