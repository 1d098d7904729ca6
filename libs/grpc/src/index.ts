export * from "./batch.js";
export * from "./client.js";
export * from "./definition.js";
export * from "./errors.js";
export * from "./ids.js";
export { isInProcessAddress, serveInProcess } from "./in-process.js";
export * from "./scope.js";
export * from "./server.js";
export { Metadata } from "@grpc/grpc-js";
