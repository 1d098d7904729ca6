import { fileURLToPath } from "node:url";
import { createDbPool, migrate, Outbox } from "@controlplane/db";
import { closeEventBus, connectEventBus } from "@controlplane/events";
import { GrpcServer } from "@controlplane/grpc";
import { stopAll } from "@controlplane/lifecycle";
import type { Logger } from "@controlplane/log";
import { IdentityServiceService } from "@controlplane/proto/registry/v1/identity";
import { RuntimeRegistryServiceService } from "@controlplane/proto/registry/v1/registry";
import { DEV_JWT_SECRET, type RegistryConfig } from "./config.js";
import { identityHandlers, registryHandlers } from "./server.js";

/** This service's Postgres schema; nothing else reads or writes it. */
export const SCHEMA = "registry";
export const MIGRATIONS_DIR = fileURLToPath(new URL("../migrations", import.meta.url));

export interface RunningRegistry {
  port: number;
  stop(): Promise<void>;
}

export async function migrateRegistry(config: RegistryConfig, log: Logger): Promise<void> {
  await migrate({ databaseUrl: config.DATABASE_URL, schema: SCHEMA, dir: MIGRATIONS_DIR, log });
}

/** Wires config -> pool -> migrations -> events -> gRPC server. */
export async function startRegistry(config: RegistryConfig, log: Logger): Promise<RunningRegistry> {
  if (config.JWT_SECRET === DEV_JWT_SECRET) log.warn("JWT_SECRET is the development default; set it outside development");
  const pool = await createDbPool(config.DATABASE_URL, { name: "runtime-registry", maxSize: config.DB_POOL_SIZE });
  const parts: Array<{ stop(): Promise<void> } | (() => Promise<void>)> = [() => pool.end()];
  try {
    await migrateRegistry(config, log);
    const bus = await connectEventBus({
      url: config.NATS_URL,
      name: "runtime-registry",
      stream: config.EVENTS_STREAM,
      subjectRoot: config.EVENTS_SUBJECT_ROOT,
    });
    parts.push(() => closeEventBus(bus));
    const outbox = new Outbox(pool, SCHEMA, bus, log);
    outbox.start();
    parts.push(outbox);
    const deps = { pool, jwtSecret: new TextEncoder().encode(config.JWT_SECRET), log };
    const server = new GrpcServer(log)
      .add(IdentityServiceService, identityHandlers(deps))
      .add(RuntimeRegistryServiceService, registryHandlers());
    const boundPort = await server.listen(config.REGISTRY_GRPC_PORT);
    parts.push(() => server.shutdown(config.SHUTDOWN_GRACE_MS));
    log.info({ port: boundPort }, "runtime-registry serving");
    return { port: boundPort, stop: () => stopAll(log, parts) };
  } catch (error) {
    await stopAll(log, parts);
    throw error;
  }
}
