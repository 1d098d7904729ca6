export * from "./database.js";
export * from "./env.js";
export * from "./events.js";
export * from "./wait.js";
export * from "./grpc.js";
export { freePort } from "@controlplane/lifecycle";
