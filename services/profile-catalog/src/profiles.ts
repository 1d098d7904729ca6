import { AlreadyExistsError, InvalidArgumentError, NotFoundError, requireUuid, type PromiseClient } from "@controlplane/grpc";
import { isUniqueViolation, type DatabasePool, type Outbox } from "@controlplane/db";
import { parseUuid } from "@controlplane/ids";
import type { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import type { RuntimeProfile } from "@controlplane/proto/profiles/v1/profiles";
import * as repo from "./repository.js";
import { MESSAGES, validateCreate, validateUpdate, type CreateInput, type UpdateInput } from "./validation.js";

const DISPLAY_NAME_KEY = "runtime_profile_workspace_display_name_key";

export interface ProfileDeps {
  pool: DatabasePool;
  outbox: Outbox;
  registry: PromiseClient<typeof RuntimeRegistryServiceService>;
}

export async function listProfiles(deps: ProfileDeps, workspaceId: string, enabledOnly: boolean) {
  const rows = await deps.pool.connect((db) => repo.listProfiles(db, requireUuid(workspaceId, "workspace_id"), enabledOnly));
  return rows.map(toProto);
}

export async function getProfile(deps: ProfileDeps, workspaceId: string, profileId: string) {
  const row = await repo.findProfile(deps.pool, requireUuid(workspaceId, "workspace_id"), requireProfileId(profileId));
  if (!row) throw new NotFoundError(MESSAGES.notFound);
  return toProto(row);
}

export async function createProfile(deps: ProfileDeps, workspaceId: string, input: CreateInput, createdBy: string | undefined) {
  const ws = requireUuid(workspaceId, "workspace_id");
  const draft = validateCreate(input);
  const creator = createdBy ? parseUuid(createdBy) : null;
  try {
    return await deps.outbox.transaction(async (tx) => {
      const profile = toProto(await repo.insertProfile(tx, ws, draft, creator));
      await deps.outbox.write(tx, "profile.created", { profile }, { workspaceId: ws, actorId: createdBy });
      return profile;
    });
  } catch (error) {
    if (isUniqueViolation(error, DISPLAY_NAME_KEY)) throw new AlreadyExistsError(MESSAGES.duplicateName);
    throw error;
  }
}

export async function updateProfile(deps: ProfileDeps, workspaceId: string, profileId: string, input: UpdateInput, actorId: string | undefined) {
  const ws = requireUuid(workspaceId, "workspace_id");
  const id = requireProfileId(profileId);
  const patch = validateUpdate(input);
  try {
    return await deps.outbox.transaction(async (tx) => {
      const row = await repo.updateProfile(tx, ws, id, patch);
      if (!row) throw new NotFoundError(MESSAGES.notFound);
      const profile = toProto(row);
      await deps.outbox.write(tx, "profile.updated", { profile }, { workspaceId: ws, actorId });
      return profile;
    });
  } catch (error) {
    if (isUniqueViolation(error, DISPLAY_NAME_KEY)) throw new AlreadyExistsError(MESSAGES.duplicateName);
    throw error;
  }
}

/**
 * Asks the registry to detach the profile's runtimes (it refuses while
 * active agents are bound), then deletes the profile and records the event.
 */
export async function deleteProfile(deps: ProfileDeps, workspaceId: string, profileId: string, actorId: string | undefined) {
  const ws = requireUuid(workspaceId, "workspace_id");
  const id = requireProfileId(profileId);
  if (!(await repo.findProfile(deps.pool, ws, id))) throw new NotFoundError(MESSAGES.notFound);
  const { deletedRuntimeCount } = await deps.registry.detachProfile({ workspaceId: ws, profileId: id });
  await deps.outbox.transaction(async (tx) => {
    if (!(await repo.deleteProfile(tx, ws, id))) throw new NotFoundError(MESSAGES.notFound);
    await deps.outbox.write(tx, "profile.deleted", { profileId: id, detachedRuntimeCount: deletedRuntimeCount }, { workspaceId: ws, actorId });
  });
  return deletedRuntimeCount;
}

export function toProto(row: repo.ProfileRow): RuntimeProfile {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    displayName: row.display_name,
    protocolFamily: row.protocol_family,
    commandName: row.command_name,
    description: row.description ?? undefined,
    fixedArgs: row.fixed_args,
    visibility: row.visibility,
    createdBy: row.created_by ?? undefined,
    enabled: row.enabled,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A profile id that is not a UUID cannot name a profile. */
function requireProfileId(value: string): string {
  const id = parseUuid(value);
  if (!id) throw new InvalidArgumentError("invalid profile id");
  return id;
}
