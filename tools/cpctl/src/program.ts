import { Command } from "commander";
import type { Addresses } from "./clients.js";
import type { Output } from "./output.js";

interface GlobalOptions {
  registry: string;
  profiles: string;
  tasks: string;
  liveness: string;
  json: boolean;
}

export const program = new Command("cpctl")
  .description("Administer the control plane over gRPC: workspaces, members, tokens, runtime profiles.")
  .option("--registry <host:port>", "runtime-registry gRPC address", process.env.REGISTRY_GRPC_ADDR ?? "127.0.0.1:50051")
  .option("--profiles <host:port>", "profile-catalog gRPC address", process.env.PROFILE_CATALOG_GRPC_ADDR ?? "127.0.0.1:50052")
  .option("--tasks <host:port>", "task-queue gRPC address", process.env.TASK_QUEUE_GRPC_ADDR ?? "127.0.0.1:50053")
  .option("--liveness <host:port>", "liveness gRPC address", process.env.LIVENESS_GRPC_ADDR ?? "127.0.0.1:50054")
  .option("--json", "print JSON instead of text", false)
  .showHelpAfterError();

/** Addresses and output mode from the global flags, when a command runs. */
export function context(): { addresses: Addresses; out: Output } {
  const options = program.opts<GlobalOptions>();
  return {
    addresses: { registry: options.registry, profiles: options.profiles, tasks: options.tasks, liveness: options.liveness },
    out: { json: options.json },
  };
}
