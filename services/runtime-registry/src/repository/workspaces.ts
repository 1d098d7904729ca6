import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

const workspaceRow = z.object({
  id: z.string(),
  name: z.string(),
  slug: z.string(),
  description: z.string(),
  repos: z.unknown(),
  settings_json: z.string(),
  context: z.string().nullable(),
  issue_prefix: z.string(),
  created_at: z.date(),
  updated_at: z.date(),
});

export type WorkspaceRow = z.infer<typeof workspaceRow>;

const columns = sql.fragment`
  id, name, slug, description, repos, settings::text AS settings_json, context, issue_prefix, created_at, updated_at`;

export interface NewWorkspace {
  name: string;
  slug: string;
  description: string;
  repos: Array<{ url: string; description: string }>;
  settingsJson: string;
  context: string | null;
  issuePrefix: string;
}

export function insertWorkspace(db: CommonQueryMethods, ws: NewWorkspace) {
  return db.one(sql.type(workspaceRow)`
    INSERT INTO registry.workspace (name, slug, description, repos, settings, context, issue_prefix)
    VALUES (${ws.name}, ${ws.slug}, ${ws.description}, ${sql.jsonb(ws.repos)}, ${ws.settingsJson}::jsonb,
            ${ws.context}, ${ws.issuePrefix})
    RETURNING ${columns}`);
}

export interface WorkspacePatch {
  name?: string;
  description?: string;
  repos?: Array<{ url: string; description: string }>;
  settingsJson?: string;
  context?: string;
  issuePrefix?: string;
}

export function updateWorkspace(db: CommonQueryMethods, id: string, patch: WorkspacePatch) {
  const sets = [sql.fragment`updated_at = now()`];
  if (patch.name !== undefined) sets.push(sql.fragment`name = ${patch.name}`);
  if (patch.description !== undefined) sets.push(sql.fragment`description = ${patch.description}`);
  if (patch.repos !== undefined) sets.push(sql.fragment`repos = ${sql.jsonb(patch.repos)}`);
  if (patch.settingsJson !== undefined) sets.push(sql.fragment`settings = ${patch.settingsJson}::jsonb`);
  if (patch.context !== undefined) sets.push(sql.fragment`context = ${patch.context}`);
  if (patch.issuePrefix !== undefined) sets.push(sql.fragment`issue_prefix = ${patch.issuePrefix}`);
  return db.maybeOne(sql.type(workspaceRow)`
    UPDATE registry.workspace SET ${sql.join(sets, sql.fragment`, `)} WHERE id = ${id} RETURNING ${columns}`);
}

export function findWorkspace(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(workspaceRow)`SELECT ${columns} FROM registry.workspace WHERE id = ${id}`);
}

/** Workspaces the user is a member of, oldest first. */
export function listWorkspacesOfUser(db: CommonQueryMethods, userId: string) {
  return db.any(sql.type(workspaceRow)`
    SELECT ${sql.fragment`w.id, w.name, w.slug, w.description, w.repos, w.settings::text AS settings_json,
                          w.context, w.issue_prefix, w.created_at, w.updated_at`}
    FROM registry.workspace w JOIN registry.member m ON m.workspace_id = w.id
    WHERE m.user_id = ${userId}
    ORDER BY w.created_at, w.id`);
}

const summaryRow = z.object({ id: z.string(), name: z.string() });

/** The id and name of every workspace the user is a member of, ordered by id. */
export function listWorkspaceSummariesOfUser(db: CommonQueryMethods, userId: string) {
  return db.any(sql.type(summaryRow)`
    SELECT w.id, w.name FROM registry.workspace w JOIN registry.member m ON m.workspace_id = w.id
    WHERE m.user_id = ${userId}
    ORDER BY w.id`);
}

export function findWorkspaceSummary(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(summaryRow)`SELECT id, name FROM registry.workspace WHERE id = ${id}`);
}
