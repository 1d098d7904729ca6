import { fileURLToPath } from "node:url";
import pg from "pg";
import { runner } from "node-pg-migrate";
import type { Logger } from "@controlplane/log";
import { redactUrl } from "@controlplane/log";

/** Migrations every service gets in its schema (the outbox and its parked events). */
const KIT_MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));

export interface MigrateOptions {
  databaseUrl: string;
  /** The service's own Postgres schema; created if missing. */
  schema: string;
  /** Folder of the service's numbered forward-only `NNN_name.sql` files. */
  dir: string;
  log: Logger;
}

/**
 * Applies the kit's migrations, then the service's, each in one transaction
 * under an advisory lock (replicas starting together wait for each other).
 * Forward-only: files are never edited or reverted once applied.
 */
export async function migrate(options: MigrateOptions): Promise<string[]> {
  const applied: string[] = [];
  for (const [dir, table] of [
    [KIT_MIGRATIONS, "kit_migrations"],
    [options.dir, "migrations"],
  ] as const) {
    const ran = await runner({
      databaseUrl: options.databaseUrl,
      dir,
      schema: options.schema,
      createSchema: true,
      migrationsTable: table,
      direction: "up",
      checkOrder: true,
      singleTransaction: true,
      advisoryLockMode: "wait",
      lockValue: lockValueFor(`${options.schema}.${table}`),
      ignorePattern: "(\\..*)|(.*\\.md)",
      logger: {
        debug: (msg: string) => options.log.debug({ schema: options.schema }, msg),
        info: (msg: string) => options.log.debug({ schema: options.schema }, msg),
        warn: (msg: string) => options.log.warn({ schema: options.schema }, msg),
        error: (msg: string) => options.log.error({ schema: options.schema }, msg),
      },
    });
    applied.push(...ran.map((m) => `${table}/${m.name}`));
  }
  if (applied.length > 0) options.log.info({ schema: options.schema, applied }, "migrations applied");
  return applied;
}

/** Creates the database named in `databaseUrl` if it does not exist yet. */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const target = new URL(databaseUrl);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ""));
  if (!name) throw new Error(`DATABASE_URL names no database: ${redactUrl(databaseUrl)}`);
  const admin = new URL(databaseUrl);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`cannot reach Postgres at ${redactUrl(databaseUrl)}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`).catch((error: { code?: string }) => {
        // 42P04: created concurrently by another starter; that is fine.
        if (error.code !== "42P04") throw error;
      });
    }
  } finally {
    await client.end();
  }
}

/** A stable 31-bit advisory lock key per migrations table. */
function lockValueFor(key: string): number {
  let hash = 0;
  for (const char of key) hash = (Math.imul(hash, 31) + char.charCodeAt(0)) | 0;
  return Math.abs(hash) + 1;
}
