import { InvalidArgumentError, NotFoundError, requireUuid } from "@controlplane/grpc";
import { isForeignKeyViolation, type DatabasePool, type Outbox } from "@controlplane/db";
import type { EventBody } from "@controlplane/events";
import type { Agent, UpsertAgentRequest } from "@controlplane/proto/registry/v1/registry";
import * as repo from "./repository/agents.js";
import * as runtimes from "./repository/runtimes.js";
import { RUNTIME_NOT_FOUND } from "./runtimes.js";

export const AGENT_NOT_FOUND = "agent not found";
/** In-flight tasks an agent may hold across all runtimes unless told otherwise. */
export const DEFAULT_MAX_CONCURRENT_TASKS = 6;

/** Creates an agent bound to a runtime of its workspace, or replaces one's fields. */
export async function upsertAgent(
  { pool, outbox }: { pool: DatabasePool; outbox: Outbox },
  req: UpsertAgentRequest,
): Promise<{ agent: Agent; created: boolean }> {
  const workspaceId = requireUuid(req.workspaceId, "workspace_id");
  const runtimeId = requireUuid(req.runtimeId, "runtime_id");
  const name = req.name.trim();
  if (!name) throw new InvalidArgumentError("name is required");
  if (req.maxConcurrentTasks < 0) throw new InvalidArgumentError("max_concurrent_tasks must not be negative");
  const visibility = req.visibility.trim() || "private";
  if (visibility !== "workspace" && visibility !== "private") {
    throw new InvalidArgumentError("visibility must be 'workspace' or 'private'");
  }
  const fields: repo.AgentFields = {
    workspaceId,
    runtimeId,
    name,
    instructions: req.instructions,
    customEnv: req.customEnv,
    customArgs: req.customArgs,
    mcpConfigJson: req.mcpConfigJson === undefined ? null : requireJson(req.mcpConfigJson, "mcp_config"),
    model: req.model?.trim() || null,
    thinkingLevel: req.thinkingLevel?.trim() || null,
    runtimeConfigJson: req.runtimeConfigJson === "" ? "{}" : requireJson(req.runtimeConfigJson, "runtime_config"),
    skills: req.skills.map((s) => ({ id: s.id, name: s.name, description: s.description, content: s.content, files: s.files })),
    maxConcurrentTasks: req.maxConcurrentTasks || DEFAULT_MAX_CONCURRENT_TASKS,
    visibility,
    ownerId: req.ownerId ? requireUuid(req.ownerId, "owner_id") : null,
  };
  const runtime = await runtimes.findRuntime(pool, runtimeId);
  if (!runtime || runtime.workspace_id !== workspaceId) throw new NotFoundError(RUNTIME_NOT_FOUND);
  const agentId = req.agentId === undefined ? undefined : requireUuid(req.agentId, "agent_id");
  try {
    return await outbox.transaction(async (tx) => {
      const row = agentId === undefined ? await repo.insertAgent(tx, fields) : await repo.updateAgent(tx, agentId, fields);
      if (!row) throw new NotFoundError(AGENT_NOT_FOUND);
      const agent = agentToProto(row);
      await outbox.write(tx, "agent.upserted", upsertedEvent(agent), { workspaceId });
      return { agent, created: agentId === undefined };
    });
  } catch (error) {
    // The runtime vanished between the check and the write.
    if (isForeignKeyViolation(error)) throw new NotFoundError(RUNTIME_NOT_FOUND);
    throw error;
  }
}

export async function archiveAgent(outbox: Outbox, workspaceId: string, agentId: string): Promise<Agent> {
  const ws = requireUuid(workspaceId, "workspace_id");
  const id = requireUuid(agentId, "agent_id");
  return outbox.transaction(async (tx) => {
    const row = await repo.archiveAgent(tx, ws, id);
    if (!row) throw new NotFoundError(AGENT_NOT_FOUND);
    const agent = agentToProto(row);
    await outbox.write(tx, "agent.upserted", upsertedEvent(agent), { workspaceId: ws });
    return agent;
  });
}

/** What consumers of agent.upserted act on: the agent's id and limits, not its (unbounded) content. */
function upsertedEvent(agent: Agent): EventBody<"agent.upserted"> {
  return {
    agent: undefined,
    agentId: agent.id,
    runtimeId: agent.runtimeId,
    maxConcurrentTasks: agent.maxConcurrentTasks,
    archived: agent.archivedAt !== undefined,
  };
}

export async function getAgent(pool: DatabasePool, agentId: string): Promise<Agent> {
  const row = await repo.findAgent(pool, requireUuid(agentId, "agent_id"));
  if (!row) throw new NotFoundError(AGENT_NOT_FOUND);
  return agentToProto(row);
}

export async function listAgents(pool: DatabasePool, workspaceId: string, runtimeId: string | undefined, includeArchived: boolean) {
  const rows = await repo.listAgents(
    pool,
    requireUuid(workspaceId, "workspace_id"),
    runtimeId === undefined ? null : requireUuid(runtimeId, "runtime_id"),
    includeArchived,
  );
  return rows.map(agentToProto);
}

function requireJson(text: string, field: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch {
    throw new InvalidArgumentError(`${field} must be valid JSON`);
  }
}

export function agentToProto(row: repo.AgentRow): Agent {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    runtimeId: row.runtime_id,
    name: row.name,
    instructions: row.instructions,
    customEnv: row.custom_env,
    customArgs: row.custom_args,
    mcpConfigJson: row.mcp_config_json ?? undefined,
    model: row.model ?? undefined,
    thinkingLevel: row.thinking_level ?? undefined,
    runtimeConfigJson: row.runtime_config_json,
    skills: row.skills,
    maxConcurrentTasks: row.max_concurrent_tasks,
    visibility: row.visibility,
    ownerId: row.owner_id ?? undefined,
    archivedAt: row.archived_at ?? undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
