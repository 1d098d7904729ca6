import { createDbPool, migrate, Outbox, type DatabasePool } from "@controlplane/db";
import { closeEventBus, connectEventBus, type EventBus } from "@controlplane/events";
import type { Logger } from "@controlplane/log";
import { stopAll, type Stoppable } from "./stop.js";

export interface ServiceHostOptions {
  /** Service name: pool label, NATS connection name. */
  name: string;
  /** The service's own Postgres schema. */
  schema: string;
  migrationsDir: string;
  config: {
    DATABASE_URL: string;
    NATS_URL: string;
    EVENTS_STREAM: string;
    EVENTS_SUBJECT_ROOT: string;
    DB_POOL_SIZE: number;
    DB_PREPARED_STATEMENTS?: boolean;
    /** False when migrations ran before the start (a deploy-time job). */
    MIGRATE_ON_START?: boolean;
  };
  log: Logger;
}

/**
 * What every service with storage stands on, opened in order: the pool, its
 * migrations, the event bus and the outbox relay. `stop` closes them (and
 * whatever was added with `onStop`) in reverse order.
 */
export interface ServiceHost {
  pool: DatabasePool;
  bus: EventBus;
  outbox: Outbox;
  onStop(part: Stoppable | (() => Promise<void>)): void;
  stop(): Promise<void>;
}

export async function openServiceHost(options: ServiceHostOptions): Promise<ServiceHost> {
  const { config, log } = options;
  const parts: Array<Stoppable | (() => Promise<void>)> = [];
  const stop = () => stopAll(log, parts);
  try {
    const pool = await createDbPool(config.DATABASE_URL, {
      name: options.name,
      maxSize: config.DB_POOL_SIZE,
      preparedStatements: config.DB_PREPARED_STATEMENTS,
    });
    parts.push(() => pool.end());
    if (config.MIGRATE_ON_START !== false) {
      await migrate({ databaseUrl: config.DATABASE_URL, schema: options.schema, dir: options.migrationsDir, log });
    }
    const bus = await connectEventBus({
      url: config.NATS_URL,
      name: options.name,
      stream: config.EVENTS_STREAM,
      subjectRoot: config.EVENTS_SUBJECT_ROOT,
    });
    parts.push(() => closeEventBus(bus));
    const outbox = new Outbox(pool, options.schema, bus, log);
    outbox.start();
    parts.push(outbox);
    return { pool, bus, outbox, onStop: (part) => parts.push(part), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
