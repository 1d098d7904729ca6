import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

const skillSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().default(""),
  content: z.string(),
  files: z.array(z.object({ path: z.string(), content: z.string() })).default([]),
});

const agentRow = z.object({
  id: z.string(),
  workspace_id: z.string(),
  runtime_id: z.string(),
  name: z.string(),
  instructions: z.string(),
  custom_env: z.record(z.string()),
  custom_args: z.array(z.string()),
  mcp_config_json: z.string().nullable(),
  model: z.string().nullable(),
  thinking_level: z.string().nullable(),
  runtime_config_json: z.string(),
  skills: z.array(skillSchema),
  max_concurrent_tasks: z.number(),
  visibility: z.string(),
  owner_id: z.string().nullable(),
  archived_at: z.date().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
});

export type AgentRow = z.infer<typeof agentRow>;
export type AgentSkillRow = z.infer<typeof skillSchema>;

const columns = sql.fragment`
  id, workspace_id, runtime_id, name, instructions, custom_env, custom_args, mcp_config::text AS mcp_config_json,
  model, thinking_level, runtime_config::text AS runtime_config_json, skills, max_concurrent_tasks, visibility,
  owner_id, archived_at, created_at, updated_at`;

export interface AgentFields {
  workspaceId: string;
  runtimeId: string;
  name: string;
  instructions: string;
  customEnv: Record<string, string>;
  customArgs: string[];
  mcpConfigJson: string | null;
  model: string | null;
  thinkingLevel: string | null;
  runtimeConfigJson: string;
  skills: AgentSkillRow[];
  maxConcurrentTasks: number;
  visibility: string;
  ownerId: string | null;
}

export function insertAgent(db: CommonQueryMethods, a: AgentFields) {
  return db.one(sql.type(agentRow)`
    INSERT INTO registry.agent
      (workspace_id, runtime_id, name, instructions, custom_env, custom_args, mcp_config, model, thinking_level,
       runtime_config, skills, max_concurrent_tasks, visibility, owner_id)
    VALUES (${a.workspaceId}, ${a.runtimeId}, ${a.name}, ${a.instructions}, ${sql.jsonb(a.customEnv)},
            ${sql.jsonb(a.customArgs)}, ${a.mcpConfigJson}::jsonb, ${a.model}, ${a.thinkingLevel},
            ${a.runtimeConfigJson}::jsonb, ${sql.jsonb(a.skills)}, ${a.maxConcurrentTasks}, ${a.visibility}, ${a.ownerId})
    RETURNING ${columns}`);
}

export function updateAgent(db: CommonQueryMethods, id: string, a: AgentFields) {
  return db.maybeOne(sql.type(agentRow)`
    UPDATE registry.agent SET
      runtime_id = ${a.runtimeId}, name = ${a.name}, instructions = ${a.instructions},
      custom_env = ${sql.jsonb(a.customEnv)}, custom_args = ${sql.jsonb(a.customArgs)},
      mcp_config = ${a.mcpConfigJson}::jsonb, model = ${a.model}, thinking_level = ${a.thinkingLevel},
      runtime_config = ${a.runtimeConfigJson}::jsonb, skills = ${sql.jsonb(a.skills)},
      max_concurrent_tasks = ${a.maxConcurrentTasks}, visibility = ${a.visibility}, owner_id = ${a.ownerId},
      updated_at = now()
    WHERE id = ${id} AND workspace_id = ${a.workspaceId}
    RETURNING ${columns}`);
}

export function archiveAgent(db: CommonQueryMethods, workspaceId: string, id: string) {
  return db.maybeOne(sql.type(agentRow)`
    UPDATE registry.agent SET archived_at = coalesce(archived_at, now()), updated_at = now()
    WHERE id = ${id} AND workspace_id = ${workspaceId}
    RETURNING ${columns}`);
}

export function findAgent(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(agentRow)`SELECT ${columns} FROM registry.agent WHERE id = ${id}`);
}

export function listAgents(db: CommonQueryMethods, workspaceId: string, runtimeId: string | null, includeArchived: boolean) {
  return db.any(sql.type(agentRow)`
    SELECT ${columns} FROM registry.agent
    WHERE workspace_id = ${workspaceId}
      AND (${runtimeId}::uuid IS NULL OR runtime_id = ${runtimeId})
      AND (archived_at IS NULL OR ${includeArchived})
    ORDER BY created_at, id`);
}

/** Re-points every agent of one runtime to another (legacy merge). */
export async function moveAgents(db: CommonQueryMethods, fromRuntimeId: string, toRuntimeId: string) {
  await db.query(sql.unsafe`
    UPDATE registry.agent SET runtime_id = ${toRuntimeId}, updated_at = now() WHERE runtime_id = ${fromRuntimeId}`);
}

export function countActiveAgents(db: CommonQueryMethods, runtimeIds: string[]) {
  return db.oneFirst(sql.type(z.object({ count: z.number() }))`
    SELECT count(*)::int AS count FROM registry.agent
    WHERE runtime_id = ANY(${sql.array(runtimeIds, "uuid")}) AND archived_at IS NULL`);
}

export async function deleteArchivedAgents(db: CommonQueryMethods, runtimeIds: string[]) {
  await db.query(sql.unsafe`
    DELETE FROM registry.agent WHERE runtime_id = ANY(${sql.array(runtimeIds, "uuid")}) AND archived_at IS NOT NULL`);
}
