import { InvalidArgumentError, NotFoundError, requireUuid } from "@controlplane/grpc";
import type { DatabasePool } from "@controlplane/db";
import { parseUuid } from "@controlplane/ids";
import type { Runtime } from "@controlplane/proto/registry/v1/registry";
import { launchHeader } from "./launch-headers.js";
import * as repo from "./repository/runtimes.js";

export const RUNTIME_NOT_FOUND = "runtime not found";

/** NOT_FOUND only when the row does not exist, so callers can trust it as "gone". */
export async function getRuntime(pool: DatabasePool, runtimeId: string): Promise<Runtime> {
  const row = await repo.findRuntime(pool, requireUuid(runtimeId, "runtime_id"));
  if (!row) throw new NotFoundError(RUNTIME_NOT_FOUND);
  return runtimeToProto(row);
}

/** Most ids one call may ask about (a caller batches a fleet's first beats). */
export const MAX_WORKSPACE_LOOKUPS = 1_000;

/** Canonical runtime id -> workspace id, for the given runtimes that exist; ids that are not UUIDs are left out. */
export async function getRuntimeWorkspaces(pool: DatabasePool, runtimeIds: string[]): Promise<Record<string, string>> {
  if (runtimeIds.length > MAX_WORKSPACE_LOOKUPS) throw new InvalidArgumentError(`at most ${MAX_WORKSPACE_LOOKUPS} runtime_ids per call`);
  const ids = [...new Set(runtimeIds.map(parseUuid).filter((id): id is string => id !== null))];
  if (ids.length === 0) return {};
  const rows = await repo.runtimeWorkspaces(pool, ids);
  return Object.fromEntries(rows.map((row) => [row.id, row.workspace_id]));
}

/** A workspace's runtimes, oldest first; with `ownerId`, only that user's (an id that is not a UUID owns none). */
export async function listRuntimes(pool: DatabasePool, workspaceId: string, ownerId?: string): Promise<Runtime[]> {
  const workspace = requireUuid(workspaceId, "workspace_id");
  if (ownerId === undefined) return (await repo.listRuntimes(pool, workspace)).map(runtimeToProto);
  const owner = parseUuid(ownerId);
  if (!owner) return [];
  return (await repo.listRuntimes(pool, workspace, owner)).map(runtimeToProto);
}

export function runtimeToProto(row: repo.RuntimeRow): Runtime {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    daemonId: row.daemon_id ?? undefined,
    name: row.name,
    runtimeMode: row.runtime_mode,
    provider: row.provider,
    launchHeader: launchHeader(row.provider),
    status: row.status,
    deviceInfo: row.device_info,
    metadataJson: row.metadata_json,
    ownerId: row.owner_id ?? undefined,
    visibility: row.visibility,
    profileId: row.profile_id ?? undefined,
    lastSeenAt: row.last_seen_at ?? undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    legacyDaemonId: row.legacy_daemon_id ?? undefined,
    customName: row.custom_name ?? undefined,
  };
}
