import pg from "pg";
import { redactUrl } from "@controlplane/log";
import type { CommonQueryMethods } from "slonik";
import { sql } from "./sql.js";

/**
 * One advisory lock: the two-int4 form `(classId, objId)`. Every service
 * keeps its schema in the same database, and advisory locks belong to the
 * database, not to a schema, so two services choosing the same numbers would
 * block each other: every key is taken from ADVISORY_LOCKS below.
 */
export interface AdvisoryLock {
  /** For logs: what the lock guards. */
  readonly name: string;
  readonly classId: number;
  readonly objId: number;
}

/**
 * The classes (first int4) in use. A class belongs to one owner; Postgres
 * keeps the one-bigint form apart from the two-int4 form (pg_locks objsubid 1
 * and 2), so the migrations' bigint keys never meet these.
 */
export const ADVISORY_LOCK_CLASSES = {
  /**
   * "TQ": the task queue's per-agent claim lock, objId = hashtext(agent_id),
   * taken inside the claim functions in SQL (services/task-queue/migrations).
   * The whole class is theirs: any objId here may be some agent's.
   */
  taskClaim: 0x5451,
  /** "TJ": the task queue's background jobs. */
  taskJobs: 0x544a,
  /** "LV": liveness's background jobs (the sweeper kept its original key). */
  liveness: 0x4c56,
  /** "RG": the runtime registry's background jobs. */
  registry: 0x5247,
} as const;

/**
 * Every advisory lock the control plane takes from TypeScript. Not listed,
 * because they are computed: the claim's per-agent keys (class taskClaim
 * above) and node-pg-migrate's one-bigint key per migrations table (a hash of
 * `<schema>.<table>`, see migrate.ts), which serialises replicas migrating at
 * the same time.
 */
export const ADVISORY_LOCKS = {
  /** One replica at a time fails timed-out and expired tasks. Session lock. */
  taskSweeper: { name: "taskqueue sweeper", classId: ADVISORY_LOCK_CLASSES.taskJobs, objId: 1 },
  /** One replica at a time deletes old finished tasks and expired tokens. Session lock. */
  taskRetention: { name: "taskqueue retention", classId: ADVISORY_LOCK_CLASSES.taskJobs, objId: 2 },
  /** One replica at a time takes stale runtimes offline. Transaction lock (inside the sweep). */
  livenessSweeper: { name: "liveness sweeper", classId: ADVISORY_LOCK_CLASSES.liveness, objId: 1 },
  /** One replica at a time deletes old finished actions. Session lock. */
  livenessRetention: { name: "liveness retention", classId: ADVISORY_LOCK_CLASSES.liveness, objId: 2 },
  /** One replica at a time deletes abandoned runtimes. Transaction lock (inside the collection). */
  runtimeGc: { name: "registry runtime gc", classId: ADVISORY_LOCK_CLASSES.registry, objId: 1 },
} as const satisfies Record<string, AdvisoryLock>;

/**
 * Takes `lock` for the rest of the caller's transaction, if free: true when
 * taken (released at commit or rollback, nothing to clean up), false when
 * another session holds it.
 */
export async function tryTransactionLock(tx: CommonQueryMethods, lock: AdvisoryLock): Promise<boolean> {
  return (await tx.oneFirst(sql.unsafe`SELECT pg_try_advisory_xact_lock(${lock.classId}, ${lock.objId}) AS locked`)) === true;
}

/** A session lock held on its own connection; `release` closes the connection. */
export interface HeldSessionLock {
  /** True once the connection broke: the lock is gone and another replica may take it. */
  readonly lost: boolean;
  release(): Promise<void>;
}

/**
 * Takes `lock` as a session lock on a connection opened for it alone, if
 * free; null when another session holds it. Never on a pooled connection:
 * the pool resets nothing on release, so a lock left behind by a failed
 * unlock would stay with whichever query reused that connection, and one
 * replica would hold it (and re-enter it) indefinitely. Here closing the
 * connection releases the lock whatever happened in between, and a crash of
 * the process releases it too.
 */
export async function trySessionLock(databaseUrl: string, lock: AdvisoryLock): Promise<HeldSessionLock | null> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
    application_name: `lock: ${lock.name}`.slice(0, 63),
  });
  let lost = false;
  // A broken connection emits "error": without a listener it would crash the process.
  client.on("error", () => {
    lost = true;
  });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`cannot reach Postgres at ${redactUrl(databaseUrl)} for the ${lock.name} lock: ${(error as Error).message}`, { cause: error });
  }
  try {
    const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS locked", [lock.classId, lock.objId]);
    if (rows[0]?.locked !== true) {
      await client.end();
      return null;
    }
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new Error(`could not try the ${lock.name} lock`, { cause: error });
  }
  let released: Promise<void> | undefined;
  return {
    get lost() {
      return lost;
    },
    release() {
      // Unlocked first so the lock is free when this resolves (a closing
      // backend lets go of it a moment after the socket closes); if the
      // unlock fails, ending the session releases it anyway.
      released ??= client
        .query("SELECT pg_advisory_unlock($1, $2)", [lock.classId, lock.objId])
        .then(
          () => undefined,
          () => undefined,
        )
        .then(() => client.end())
        .catch(() => undefined);
      return released;
    },
  };
}
