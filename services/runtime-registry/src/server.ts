import type { UnaryHandlers } from "@controlplane/grpc";
import type { DatabasePool } from "@controlplane/db";
import type { Logger } from "@controlplane/log";
import type { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import type { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import * as members from "./members.js";
import * as profiles from "./profiles.js";
import * as tokens from "./tokens.js";
import * as workspaces from "./workspaces.js";

export interface RegistryDeps {
  pool: DatabasePool;
  jwtSecret: Uint8Array;
  log: Logger;
}

export function identityHandlers(deps: RegistryDeps): UnaryHandlers<typeof IdentityServiceService> {
  const { pool } = deps;
  return {
    async createWorkspace(req) {
      const workspace = await workspaces.createWorkspace(pool, {
        name: req.name,
        slug: req.slug,
        description: req.description,
        repos: req.repos,
        settingsJson: req.settingsJson,
        context: req.context,
        issuePrefix: req.issuePrefix,
        ownerUserId: req.ownerUserId,
      });
      return { workspace };
    },
    async updateWorkspace(req) {
      const workspace = await workspaces.updateWorkspace(pool, req.workspaceId, {
        name: req.name,
        description: req.description,
        repos: req.repos?.repos,
        settingsJson: req.settingsJson,
        context: req.context,
        issuePrefix: req.issuePrefix,
      });
      return { workspace };
    },
    async getWorkspace(req) {
      return { workspace: await workspaces.getWorkspace(pool, req.workspaceId) };
    },
    async getWorkspaceRepos(req) {
      return workspaces.getWorkspaceRepos(pool, req.workspaceId);
    },
    async listWorkspaces(req) {
      return { workspaces: await workspaces.listWorkspaces(pool, req.userId) };
    },
    async addMember(req) {
      return { member: await members.addMember(pool, req.workspaceId, req.userId, req.role) };
    },
    async removeMember(req) {
      await members.removeMember(pool, req.workspaceId, req.userId);
      return {};
    },
    async getMembership(req) {
      return { member: await members.getMembership(pool, req.workspaceId, req.userId) };
    },
    async issueDaemonToken(req) {
      return tokens.issueDaemonToken(pool, req.workspaceId, req.daemonId, req.ttlSeconds);
    },
    async issuePersonalAccessToken(req) {
      return tokens.issuePersonalAccessToken(pool, req.userId, req.name, req.ttlSeconds);
    },
    async revokeToken(req) {
      return { info: await tokens.revokeToken(pool, req.tokenId) };
    },
    async listTokens(req) {
      return { tokens: await tokens.listTokens(pool, req.workspaceId, req.userId) };
    },
    async resolveToken(req, call) {
      return { identity: await tokens.resolveToken(pool, req.token, deps.jwtSecret, call.log) };
    },
    async renewPersonalAccessToken(req) {
      return tokens.renewPersonalAccessToken(pool, req.token, req.userId);
    },
  };
}

export function registryHandlers(): UnaryHandlers<typeof RuntimeRegistryServiceService> {
  return {
    async detachProfile(req) {
      return { deletedRuntimeCount: await profiles.detachProfile(req.workspaceId, req.profileId) };
    },
  };
}
