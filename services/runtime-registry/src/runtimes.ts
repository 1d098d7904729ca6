import { InvalidArgumentError, NotFoundError } from "@controlplane/grpc";
import type { DatabasePool } from "@controlplane/db";
import { parseUuid } from "@controlplane/ids";
import type { Runtime } from "@controlplane/proto/registry/v1/registry";
import { launchHeader } from "./launch-headers.js";
import * as repo from "./repository/runtimes.js";
import { requireUuid } from "./workspaces.js";

export const RUNTIME_NOT_FOUND = "runtime not found";

/** NOT_FOUND only when the row does not exist, so callers can trust it as "gone". */
export async function getRuntime(pool: DatabasePool, runtimeId: string): Promise<Runtime> {
  const id = parseUuid(runtimeId);
  if (!id) throw new InvalidArgumentError("invalid runtime_id");
  const row = await repo.findRuntime(pool, id);
  if (!row) throw new NotFoundError(RUNTIME_NOT_FOUND);
  return runtimeToProto(row);
}

export async function listRuntimes(pool: DatabasePool, workspaceId: string): Promise<Runtime[]> {
  return (await repo.listRuntimes(pool, requireUuid(workspaceId, "workspace_id"))).map(runtimeToProto);
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
  };
}
