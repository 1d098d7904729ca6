import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

const runtimeRow = z.object({
  id: z.string(),
  workspace_id: z.string(),
  daemon_id: z.string().nullable(),
  legacy_daemon_id: z.string().nullable(),
  name: z.string(),
  runtime_mode: z.string(),
  provider: z.string(),
  status: z.enum(["online", "offline"]),
  device_info: z.string(),
  metadata_json: z.string(),
  owner_id: z.string().nullable(),
  visibility: z.string(),
  profile_id: z.string().nullable(),
  last_seen_at: z.date().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
  custom_name: z.string().nullable(),
});

export type RuntimeRow = z.infer<typeof runtimeRow>;

const upsertedRow = runtimeRow.extend({ inserted: z.boolean() });

const columns = sql.fragment`
  id, workspace_id, daemon_id, legacy_daemon_id, name, runtime_mode, provider, status, device_info,
  metadata::text AS metadata_json, owner_id, visibility, profile_id, last_seen_at, created_at, updated_at, custom_name`;

export interface RuntimeUpsert {
  workspaceId: string;
  daemonId: string;
  name: string;
  provider: string;
  status: "online" | "offline";
  deviceInfo: string;
  /** {version, cli_version, launched_by}, plus `capabilities` from today's daemon and a failed profile's failure. */
  metadata: Record<string, unknown>;
  ownerId: string | null;
  /** Set for a custom runtime. */
  profileId: string | null;
}

/**
 * Inserts or refreshes a runtime on its key: (workspace, daemon, provider)
 * for built-ins, (workspace, daemon, profile) for custom runtimes. The owner
 * is only ever replaced by a known one. `inserted` tells a first registration
 * from a reconnect.
 */
export function upsertRuntime(db: CommonQueryMethods, r: RuntimeUpsert) {
  const conflict =
    r.profileId === null
      ? sql.fragment`(workspace_id, daemon_id, provider) WHERE profile_id IS NULL`
      : sql.fragment`(workspace_id, daemon_id, profile_id) WHERE profile_id IS NOT NULL`;
  return db.one(sql.type(upsertedRow)`
    INSERT INTO registry.agent_runtime
      (workspace_id, daemon_id, name, runtime_mode, provider, status, status_changed_at, device_info, metadata,
       owner_id, profile_id, last_seen_at)
    VALUES (${r.workspaceId}, ${r.daemonId}, ${r.name}, 'local', ${r.provider}, ${r.status}, now(), ${r.deviceInfo},
            ${sql.jsonb(r.metadata as never)}, ${r.ownerId}, ${r.profileId}, now())
    ON CONFLICT ${conflict} DO UPDATE SET
      name = excluded.name,
      runtime_mode = excluded.runtime_mode,
      provider = excluded.provider,
      status = excluded.status,
      status_changed_at = CASE WHEN agent_runtime.status = excluded.status
                               THEN agent_runtime.status_changed_at ELSE now() END,
      device_info = excluded.device_info,
      metadata = excluded.metadata,
      owner_id = coalesce(excluded.owner_id, agent_runtime.owner_id),
      last_seen_at = now(),
      updated_at = now()
    RETURNING ${columns}, (xmax = 0) AS inserted`);
}

/** What trimming a custom name removes (Go's TrimSpace, for the ASCII part). */
const WHITESPACE = " \t\n\r\v\f";

/**
 * The status of a custom runtime's row, locked until the transaction ends
 * (null: no row yet), so a concurrent register that changes it waits and
 * then reads what this one wrote.
 */
export function lockProfileRuntimeStatus(db: CommonQueryMethods, workspaceId: string, daemonId: string, profileId: string) {
  return db.maybeOneFirst(sql.type(z.object({ status: z.enum(["online", "offline"]) }))`
    SELECT status FROM registry.agent_runtime
    WHERE workspace_id = ${workspaceId} AND daemon_id = ${daemonId} AND profile_id = ${profileId}
    FOR UPDATE`);
}

/**
 * Gives a just-inserted runtime its machine's custom name: the one every
 * other runtime of the same (workspace, daemon) carries, trimmed, when they
 * all carry the same non-blank one. Null when there is nothing to inherit
 * (the row is left as it is).
 */
export function inheritCustomName(db: CommonQueryMethods, id: string, workspaceId: string, daemonId: string) {
  return db.maybeOne(sql.type(runtimeRow)`
    UPDATE registry.agent_runtime r SET custom_name = shared.inherited
    FROM (
      SELECT min(btrim(o.custom_name, ${WHITESPACE})) AS inherited
      FROM registry.agent_runtime o
      WHERE o.workspace_id = ${workspaceId} AND o.daemon_id = ${daemonId} AND o.id <> ${id}
      HAVING count(*) > 0 AND count(o.custom_name) = count(*)
        AND min(btrim(o.custom_name, ${WHITESPACE})) = max(btrim(o.custom_name, ${WHITESPACE}))
        AND min(btrim(o.custom_name, ${WHITESPACE})) <> ''
    ) shared
    WHERE r.id = ${id} AND r.custom_name IS NULL
    RETURNING ${columns}`);
}

export function findRuntime(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(runtimeRow)`SELECT ${columns} FROM registry.agent_runtime WHERE id = ${id}`);
}

export function runtimeWorkspaces(db: CommonQueryMethods, ids: string[]) {
  return db.any(sql.type(z.object({ id: z.string(), workspace_id: z.string() }))`
    SELECT id, workspace_id FROM registry.agent_runtime WHERE id = ANY(${sql.array(ids, "uuid")})`);
}

/** A workspace's runtimes, oldest first; with `ownerId`, only that user's. */
export function listRuntimes(db: CommonQueryMethods, workspaceId: string, ownerId: string | null = null) {
  const owner = ownerId === null ? sql.fragment`TRUE` : sql.fragment`owner_id = ${ownerId}`;
  return db.any(sql.type(runtimeRow)`
    SELECT ${columns} FROM registry.agent_runtime WHERE workspace_id = ${workspaceId} AND ${owner} ORDER BY created_at, id`);
}

/**
 * Built-in runtimes of the workspace and provider whose daemon id matches
 * `legacyId` case-insensitively, other than `exceptId`, locked: a concurrent
 * merge of the same rows waits here and then sees them gone.
 */
export function lockLegacyMatches(db: CommonQueryMethods, workspaceId: string, provider: string, legacyId: string, exceptId: string) {
  return db.anyFirst(sql.type(z.object({ id: z.string() }))`
    SELECT id FROM registry.agent_runtime
    WHERE workspace_id = ${workspaceId} AND provider = ${provider} AND profile_id IS NULL
      AND lower(daemon_id) = lower(${legacyId}) AND id <> ${exceptId}
    ORDER BY created_at, id
    FOR UPDATE`);
}

/** Records the first merged legacy id; later merges keep it. */
export async function recordLegacyId(db: CommonQueryMethods, runtimeId: string, legacyId: string) {
  await db.query(sql.unsafe`
    UPDATE registry.agent_runtime SET legacy_daemon_id = ${legacyId}
    WHERE id = ${runtimeId} AND legacy_daemon_id IS NULL`);
}

/** True when the row existed and is now gone. */
export async function deleteRuntime(db: CommonQueryMethods, id: string) {
  const result = await db.query(sql.unsafe`DELETE FROM registry.agent_runtime WHERE id = ${id}`);
  return result.rowCount === 1;
}

/** Who may touch which runtimes: a daemon token's workspace, a user's memberships, or anyone (internal). */
export type RuntimeScope = { workspaceId: string } | { userId: string } | "internal";

function scopeFilter(scope: RuntimeScope) {
  if (scope === "internal") return sql.fragment`TRUE`;
  if ("workspaceId" in scope) return sql.fragment`r.workspace_id = ${scope.workspaceId}`;
  return sql.fragment`r.workspace_id IN (SELECT workspace_id FROM registry.member WHERE user_id = ${scope.userId})`;
}

const offlinedRow = z.object({
  id: z.string(),
  workspace_id: z.string(),
  was_online: z.boolean(),
  last_seen_at: z.date().nullable(),
});

/**
 * Marks the runtimes in scope offline; reports which of them were online.
 * A runtime with a reason (raw JSON) gets it as metadata.offline_reason.
 */
export function markOffline(db: CommonQueryMethods, ids: string[], scope: RuntimeScope, reasons: ReadonlyMap<string, string> = new Map()) {
  return db.any(sql.type(offlinedRow)`
    WITH given AS (
      SELECT * FROM unnest(${sql.array(ids, "uuid")}, ${sql.array(
        ids.map((id) => reasons.get(id) ?? null),
        "text",
      )}) AS g(id, reason)
    ), target AS (
      SELECT r.id, r.status, given.reason FROM registry.agent_runtime r JOIN given ON given.id = r.id
      WHERE ${scopeFilter(scope)}
      FOR UPDATE OF r
    )
    UPDATE registry.agent_runtime r
    SET status = 'offline', status_changed_at = now(), updated_at = now(),
        metadata = CASE WHEN target.reason IS NULL THEN r.metadata
                        ELSE r.metadata || jsonb_build_object('offline_reason', target.reason::jsonb) END
    FROM target
    WHERE r.id = target.id
    RETURNING r.id, r.workspace_id, target.status = 'online' AS was_online, r.last_seen_at`);
}

/**
 * Applies a liveness status change if it is newer than the last one applied,
 * so late or repeated events never roll the status back.
 */
export async function applyStatus(db: CommonQueryMethods, id: string, status: "online" | "offline", changedAt: Date, lastSeenAt: Date | undefined) {
  const result = await db.query(sql.unsafe`
    UPDATE registry.agent_runtime
    SET status = ${status}, status_changed_at = ${sql.timestamp(changedAt)}, updated_at = now(),
        last_seen_at = greatest(last_seen_at, ${lastSeenAt ? sql.timestamp(lastSeenAt) : null})
    WHERE id = ${id} AND status_changed_at < ${sql.timestamp(changedAt)}`);
  return result.rowCount === 1;
}

/** Runtime rows of a profile, locked for deletion. */
export function lockProfileRuntimes(db: CommonQueryMethods, workspaceId: string, profileId: string) {
  return db.anyFirst(sql.type(z.object({ id: z.string() }))`
    SELECT id FROM registry.agent_runtime
    WHERE workspace_id = ${workspaceId} AND profile_id = ${profileId}
    FOR UPDATE`);
}

/**
 * Offline runtimes unseen since `before` with no agent at all (archived or
 * not), deleted in one statement; returns what was removed.
 */
export function deleteAbandoned(db: CommonQueryMethods, before: Date, limit: number) {
  return db.any(sql.type(z.object({ id: z.string(), workspace_id: z.string() }))`
    DELETE FROM registry.agent_runtime r
    WHERE r.id IN (
      SELECT c.id FROM registry.agent_runtime c
      WHERE c.status = 'offline' AND coalesce(c.last_seen_at, c.created_at) < ${sql.timestamp(before)}
        AND NOT EXISTS (SELECT 1 FROM registry.agent a WHERE a.runtime_id = c.id)
      ORDER BY c.last_seen_at NULLS FIRST
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING r.id, r.workspace_id`);
}
