export * from "./errors.js";
export * from "./inbox.js";
export * from "./migrate.js";
export * from "./outbox.js";
export * from "./pool.js";
export * from "./sql.js";
export type { DatabaseTransactionConnection, DatabasePoolConnection, CommonQueryMethods } from "slonik";
