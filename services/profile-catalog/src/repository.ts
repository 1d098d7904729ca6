import { z } from "zod";
import { sql, type CommonQueryMethods, type DatabaseTransactionConnection } from "@controlplane/db";
import type { ProfileDraft, ProfilePatch } from "./validation.js";

/** This service's Postgres schema; nothing else reads or writes it. */
export const SCHEMA = "profiles";

const profileRow = z.object({
  id: z.string(),
  workspace_id: z.string(),
  display_name: z.string(),
  protocol_family: z.string(),
  command_name: z.string(),
  description: z.string().nullable(),
  fixed_args: z.array(z.string()),
  visibility: z.string(),
  created_by: z.string().nullable(),
  enabled: z.boolean(),
  created_at: z.date(),
  updated_at: z.date(),
});

export type ProfileRow = z.infer<typeof profileRow>;

const columns = sql.fragment`
  id, workspace_id, display_name, protocol_family, command_name, description,
  fixed_args, visibility, created_by, enabled, created_at, updated_at`;

/** Oldest first, as the contract lists them. */
export function listProfiles(db: CommonQueryMethods, workspaceId: string, enabledOnly: boolean) {
  return db.any(sql.type(profileRow)`
    SELECT ${columns} FROM profiles.runtime_profile
    WHERE workspace_id = ${workspaceId} AND (enabled OR NOT ${enabledOnly})
    ORDER BY created_at, id`);
}

export function findProfile(db: CommonQueryMethods, workspaceId: string, profileId: string) {
  return db.maybeOne(sql.type(profileRow)`
    SELECT ${columns} FROM profiles.runtime_profile
    WHERE id = ${profileId} AND workspace_id = ${workspaceId}`);
}

export function insertProfile(tx: DatabaseTransactionConnection, workspaceId: string, draft: ProfileDraft, createdBy: string | null) {
  return tx.one(sql.type(profileRow)`
    INSERT INTO profiles.runtime_profile
      (workspace_id, display_name, protocol_family, command_name, description, fixed_args, visibility, created_by, enabled)
    VALUES (
      ${workspaceId}, ${draft.displayName}, ${draft.protocolFamily}, ${draft.commandName}, ${draft.description},
      ${sql.jsonb(draft.fixedArgs)}, ${draft.visibility}, ${createdBy}, ${draft.enabled})
    RETURNING ${columns}`);
}

/** Applies the present fields of `patch`; null when the profile is not in the workspace. */
export function updateProfile(tx: DatabaseTransactionConnection, workspaceId: string, profileId: string, patch: ProfilePatch) {
  const sets = [sql.fragment`updated_at = now()`];
  if (patch.displayName !== undefined) sets.push(sql.fragment`display_name = ${patch.displayName}`);
  if (patch.commandName !== undefined) sets.push(sql.fragment`command_name = ${patch.commandName}`);
  if (patch.description !== undefined) sets.push(sql.fragment`description = ${patch.description}`);
  if (patch.fixedArgs !== undefined) sets.push(sql.fragment`fixed_args = ${sql.jsonb(patch.fixedArgs)}`);
  if (patch.visibility !== undefined) sets.push(sql.fragment`visibility = ${patch.visibility}`);
  if (patch.enabled !== undefined) sets.push(sql.fragment`enabled = ${patch.enabled}`);
  return tx.maybeOne(sql.type(profileRow)`
    UPDATE profiles.runtime_profile SET ${sql.join(sets, sql.fragment`, `)}
    WHERE id = ${profileId} AND workspace_id = ${workspaceId}
    RETURNING ${columns}`);
}

/** True when a row was deleted. */
export async function deleteProfile(tx: DatabaseTransactionConnection, workspaceId: string, profileId: string) {
  const result = await tx.query(sql.unsafe`
    DELETE FROM profiles.runtime_profile WHERE id = ${profileId} AND workspace_id = ${workspaceId}`);
  return result.rowCount === 1;
}
