import { AlreadyExistsError, InvalidArgumentError, NotFoundError, requireUuid } from "@controlplane/grpc";
import { isUniqueViolation, type DatabasePool, type Outbox } from "@controlplane/db";
import { parseUuid } from "@controlplane/ids";
import { MemberRole, type Workspace, type WorkspaceSummary } from "@controlplane/proto/registry/v1/identity";
import * as members from "./repository/members.js";
import * as repo from "./repository/workspaces.js";
import { normalizeRepos, rawRepos, reposVersion, type Repo } from "./repos.js";

export const WORKSPACE_NOT_FOUND = "workspace not found";

export interface CreateWorkspaceInput {
  name: string;
  slug: string;
  description: string;
  repos: Repo[];
  settingsJson: string;
  context?: string;
  issuePrefix: string;
  ownerUserId?: string;
}

/** Creates a workspace; its owner, when named, becomes a member with `member.added` in the same transaction. */
export async function createWorkspace(outbox: Outbox, input: CreateWorkspaceInput): Promise<Workspace> {
  const name = input.name.trim();
  if (!name) throw new InvalidArgumentError("name is required");
  const slug = input.slug.trim() || slugify(name);
  if (!/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(slug)) {
    throw new InvalidArgumentError("slug must be lower-case letters, digits and dashes");
  }
  const owner = input.ownerUserId ? requireUuid(input.ownerUserId, "owner_user_id") : undefined;
  const settingsJson = parseSettings(input.settingsJson || "{}");
  try {
    return await outbox.transaction(async (tx) => {
      const row = await repo.insertWorkspace(tx, {
        name,
        slug,
        description: input.description,
        repos: input.repos.map((r) => ({ url: r.url, description: r.description })),
        settingsJson,
        context: input.context ?? null,
        issuePrefix: input.issuePrefix.trim(),
      });
      if (owner) {
        await members.insertMember(tx, row.id, owner, "owner");
        await outbox.write(tx, "member.added", { userId: owner, role: MemberRole.MEMBER_ROLE_OWNER }, { workspaceId: row.id });
      }
      return toProto(row);
    });
  } catch (error) {
    if (isUniqueViolation(error, "workspace_slug_key")) {
      throw new AlreadyExistsError("a workspace with this slug already exists");
    }
    throw error;
  }
}

export interface UpdateWorkspaceInput {
  name?: string;
  description?: string;
  repos?: Repo[];
  settingsJson?: string;
  context?: string;
  issuePrefix?: string;
}

export async function updateWorkspace(pool: DatabasePool, workspaceId: string, input: UpdateWorkspaceInput) {
  const id = requireUuid(workspaceId, "workspace_id");
  if (input.name !== undefined && !input.name.trim()) throw new InvalidArgumentError("name cannot be empty");
  const row = await repo.updateWorkspace(pool, id, {
    ...input,
    name: input.name?.trim(),
    settingsJson: input.settingsJson === undefined ? undefined : parseSettings(input.settingsJson),
  });
  if (!row) throw new NotFoundError(WORKSPACE_NOT_FOUND);
  return toProto(row);
}

export async function getWorkspace(pool: DatabasePool, workspaceId: string): Promise<Workspace> {
  const id = parseUuid(workspaceId);
  const row = id ? await repo.findWorkspace(pool, id) : null;
  if (!row) throw new NotFoundError(WORKSPACE_NOT_FOUND);
  return toProto(row);
}

export async function getWorkspaceRepos(pool: DatabasePool, workspaceId: string) {
  const id = parseUuid(workspaceId);
  const row = id ? await repo.findWorkspace(pool, id) : null;
  if (!row) throw new NotFoundError(WORKSPACE_NOT_FOUND);
  const repos = normalizeRepos(row.repos);
  return { repos, reposVersion: reposVersion(repos), settingsJson: row.settings_json };
}

export async function listWorkspaces(pool: DatabasePool, userId: string): Promise<Workspace[]> {
  const id = parseUuid(userId);
  if (!id) return [];
  return (await repo.listWorkspacesOfUser(pool, id)).map(toProto);
}

/**
 * The workspaces a daemon works in, ordered by id: a user's memberships (none
 * for an id that is not a UUID), or a daemon token's one workspace.
 */
export async function listDaemonWorkspaces(
  pool: DatabasePool,
  caller: { $case: "userId"; value: string } | { $case: "workspaceId"; value: string } | undefined,
): Promise<WorkspaceSummary[]> {
  if (caller === undefined) throw new InvalidArgumentError("user_id or workspace_id is required");
  if (caller.$case === "userId") {
    const userId = parseUuid(caller.value);
    return userId ? [...(await repo.listWorkspaceSummariesOfUser(pool, userId))] : [];
  }
  const id = parseUuid(caller.value);
  const row = id ? await repo.findWorkspaceSummary(pool, id) : null;
  if (!row) throw new NotFoundError(WORKSPACE_NOT_FOUND);
  return [row];
}

function toProto(row: repo.WorkspaceRow): Workspace {
  return {
    id: row.id,
    name: row.name,
    slug: row.slug,
    description: row.description,
    repos: rawRepos(row.repos),
    settingsJson: row.settings_json,
    context: row.context ?? undefined,
    issuePrefix: row.issue_prefix,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Settings must be a JSON object; returned as given for the jsonb cast. */
function parseSettings(json: string): string {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new InvalidArgumentError("settings must be a JSON object");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError("settings must be a JSON object");
  }
  return json;
}

function slugify(name: string): string {
  const slug = name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64)
    .replace(/-+$/g, "");
  return slug || "workspace";
}
