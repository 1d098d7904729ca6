import { z } from "zod";
import { sql, type CommonQueryMethods } from "@controlplane/db";

const daemonTokenRow = z.object({
  id: z.string(),
  token_prefix: z.string(),
  workspace_id: z.string(),
  daemon_id: z.string(),
  expires_at: z.date().nullable(),
  revoked_at: z.date().nullable(),
  created_at: z.date(),
});

const patRow = z.object({
  id: z.string(),
  user_id: z.string(),
  name: z.string(),
  token_prefix: z.string(),
  expires_at: z.date().nullable(),
  last_used_at: z.date().nullable(),
  revoked_at: z.date().nullable(),
  created_at: z.date(),
});

export type DaemonTokenRow = z.infer<typeof daemonTokenRow>;
export type PatRow = z.infer<typeof patRow>;

const daemonColumns = sql.fragment`id, token_prefix, workspace_id, daemon_id, expires_at, revoked_at, created_at`;
const patColumns = sql.fragment`id, user_id, name, token_prefix, expires_at, last_used_at, revoked_at, created_at`;

export function insertDaemonToken(
  db: CommonQueryMethods,
  row: { hash: string; prefix: string; workspaceId: string; daemonId: string; expiresAt: Date | null },
) {
  return db.one(sql.type(daemonTokenRow)`
    INSERT INTO registry.daemon_token (token_hash, token_prefix, workspace_id, daemon_id, expires_at)
    VALUES (${row.hash}, ${row.prefix}, ${row.workspaceId}, ${row.daemonId}, ${toTimestamp(row.expiresAt)})
    RETURNING ${daemonColumns}`);
}

export function insertPat(db: CommonQueryMethods, row: { hash: string; prefix: string; userId: string; name: string; expiresAt: Date | null }) {
  return db.one(sql.type(patRow)`
    INSERT INTO registry.personal_access_token (token_hash, token_prefix, user_id, name, expires_at)
    VALUES (${row.hash}, ${row.prefix}, ${row.userId}, ${row.name}, ${toTimestamp(row.expiresAt)})
    RETURNING ${patColumns}`);
}

/** A daemon token that is neither revoked nor expired. */
export function findLiveDaemonToken(db: CommonQueryMethods, hash: string) {
  return db.maybeOne(sql.type(daemonTokenRow)`
    SELECT ${daemonColumns} FROM registry.daemon_token
    WHERE token_hash = ${hash} AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`);
}

/** A personal access token that is neither revoked nor expired. */
export function findLivePat(db: CommonQueryMethods, hash: string) {
  return db.maybeOne(sql.type(patRow)`
    SELECT ${patColumns} FROM registry.personal_access_token
    WHERE token_hash = ${hash} AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`);
}

/** Records use at most once a minute per token, to keep lookups write-free. */
export async function touchPat(db: CommonQueryMethods, id: string) {
  await db.query(sql.unsafe`
    UPDATE registry.personal_access_token SET last_used_at = now()
    WHERE id = ${id} AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`);
}

/**
 * Moves the expiry forward only if it is still `expected`, so of two
 * concurrent renewals exactly one wins.
 */
export function extendPat(db: CommonQueryMethods, id: string, expected: Date, next: Date) {
  return db.maybeOne(sql.type(patRow)`
    UPDATE registry.personal_access_token SET expires_at = ${toTimestamp(next)}
    WHERE id = ${id} AND date_trunc('milliseconds', expires_at) = ${toTimestamp(expected)} AND revoked_at IS NULL
    RETURNING ${patColumns}`);
}

export function findPatById(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(patRow)`SELECT ${patColumns} FROM registry.personal_access_token WHERE id = ${id}`);
}

/** Revokes a daemon token that is not revoked yet; null when it already was, or does not exist. */
export function revokeDaemonToken(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(daemonTokenRow)`
    UPDATE registry.daemon_token SET revoked_at = now() WHERE id = ${id} AND revoked_at IS NULL
    RETURNING ${daemonColumns}`);
}

/** Revokes a personal access token that is not revoked yet; null when it already was, or does not exist. */
export function revokePat(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(patRow)`
    UPDATE registry.personal_access_token SET revoked_at = now() WHERE id = ${id} AND revoked_at IS NULL
    RETURNING ${patColumns}`);
}

export function findDaemonTokenById(db: CommonQueryMethods, id: string) {
  return db.maybeOne(sql.type(daemonTokenRow)`SELECT ${daemonColumns} FROM registry.daemon_token WHERE id = ${id}`);
}

export function listDaemonTokens(db: CommonQueryMethods, workspaceId: string) {
  return db.any(sql.type(daemonTokenRow)`
    SELECT ${daemonColumns} FROM registry.daemon_token WHERE workspace_id = ${workspaceId} ORDER BY created_at, id`);
}

export function listPats(db: CommonQueryMethods, userId: string) {
  return db.any(sql.type(patRow)`
    SELECT ${patColumns} FROM registry.personal_access_token WHERE user_id = ${userId} ORDER BY created_at, id`);
}

function toTimestamp(date: Date | null) {
  return date === null ? null : sql.timestamp(date);
}
