export * from "./catalog.js";
export * from "./connection.js";
export * from "./consumer.js";
export * from "./signals.js";
export * from "./tracing.js";
