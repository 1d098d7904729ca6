import type { TestDatabase } from "./database.js";
import type { TestEvents } from "./events.js";
import { NATS_URL } from "./events.js";

/**
 * Environment for services under test: their own database and event stream,
 * every port picked by the OS, quiet logs (set TEST_LOG_LEVEL to see them).
 */
export function testEnv(db: TestDatabase, events: TestEvents, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    NATS_URL,
    EVENTS_STREAM: events.stream,
    EVENTS_SUBJECT_ROOT: events.subjectRoot,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    DB_POOL_SIZE: "4",
    REGISTRY_GRPC_PORT: "0",
    PROFILE_CATALOG_GRPC_PORT: "0",
    TASK_QUEUE_GRPC_PORT: "0",
    LIVENESS_GRPC_PORT: "0",
    GATEWAY_PORT: "0",
    GATEWAY_HOST: "127.0.0.1",
    SHUTDOWN_GRACE_MS: "2000",
    ...extra,
  };
}
