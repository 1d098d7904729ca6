import type { UnaryHandlers } from "@controlplane/grpc";
import type { DatabasePool, Outbox } from "@controlplane/db";
import type { Logger } from "@controlplane/log";
import type { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import type { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import type { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import type { PromiseClient } from "@controlplane/grpc";
import * as agents from "./agents.js";
import { deregisterRuntimes } from "./deregister.js";
import * as members from "./members.js";
import * as profiles from "./profiles.js";
import { registerDaemon } from "./register.js";
import * as runtimes from "./runtimes.js";
import * as tokens from "./tokens.js";
import * as users from "./users.js";
import * as workspaces from "./workspaces.js";

export interface RegistryDeps {
  pool: DatabasePool;
  outbox: Outbox;
  profiles: PromiseClient<typeof ProfileCatalogServiceService>;
  jwtSecret: Uint8Array;
  log: Logger;
}

export function identityHandlers(deps: RegistryDeps): UnaryHandlers<typeof IdentityServiceService> {
  const { pool, outbox } = deps;
  return {
    async createWorkspace(req) {
      const workspace = await workspaces.createWorkspace(outbox, {
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
    async listDaemonWorkspaces(req) {
      return { workspaces: await workspaces.listDaemonWorkspaces(pool, req.caller) };
    },
    async addMember(req) {
      return { member: await members.addMember(outbox, req.workspaceId, req.userId, req.role) };
    },
    async removeMember(req) {
      await members.removeMember(outbox, req.workspaceId, req.userId);
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
      return { info: await tokens.revokeToken(outbox, req.tokenId) };
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
    async recordUser(req) {
      return { user: await users.recordUser(pool, req.user) };
    },
    async getUser(req) {
      return { user: await users.getUser(pool, req.userId, req.emailClaim) };
    },
  };
}

export function registryHandlers(deps: RegistryDeps): UnaryHandlers<typeof RuntimeRegistryServiceService> {
  const { pool, outbox } = deps;
  return {
    async registerDaemon(req, call) {
      return registerDaemon(deps, req, call.signal);
    },
    async deregisterRuntimes(req) {
      return { offlineRuntimeIds: await deregisterRuntimes(deps, req) };
    },
    async getRuntime(req) {
      return { runtime: await runtimes.getRuntime(pool, req.runtimeId) };
    },
    async getRuntimeWorkspaces(req) {
      return { workspaceIds: await runtimes.getRuntimeWorkspaces(pool, req.runtimeIds) };
    },
    async listRuntimes(req) {
      return { runtimes: await runtimes.listRuntimes(pool, req.workspaceId, req.ownerId) };
    },
    async upsertAgent(req) {
      return agents.upsertAgent(deps, req);
    },
    async archiveAgent(req) {
      return { agent: await agents.archiveAgent(outbox, req.workspaceId, req.agentId) };
    },
    async getAgent(req) {
      return { agent: await agents.getAgent(pool, req.agentId) };
    },
    async listAgents(req) {
      return { agents: await agents.listAgents(pool, req.workspaceId, req.runtimeId, req.includeArchived) };
    },
    async detachProfile(req) {
      return { deletedRuntimeCount: await profiles.detachProfile(outbox, req.workspaceId, req.profileId) };
    },
  };
}
