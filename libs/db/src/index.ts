export * from "./errors.js";
export * from "./inbox.js";
export * from "./migrate.js";
export * from "./outbox.js";
export { DEFAULT_MAX_PAYLOAD_BYTES, publishedSize } from "./outbox-publish.js";
export * from "./pool.js";
export * from "./sql.js";
export { queryTracing, statementSummary } from "./tracing.js";
export type { DatabaseTransactionConnection, DatabasePoolConnection, CommonQueryMethods } from "slonik";
