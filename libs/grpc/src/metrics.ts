import { counter, histogram } from "@controlplane/metrics";

export const serverHandled = counter({
  name: "grpc_server_handled_total",
  help: "RPCs completed by this process, by service, method and gRPC code.",
  labelNames: ["grpc_service", "grpc_method", "grpc_code"] as const,
});

export const serverLatency = histogram({
  name: "grpc_server_handling_seconds",
  help: "Time from receiving an RPC to answering it.",
  labelNames: ["grpc_service", "grpc_method"] as const,
});

export const clientHandled = counter({
  name: "grpc_client_handled_total",
  help: "Outbound RPCs completed, by service, method and gRPC code (after retries).",
  labelNames: ["grpc_service", "grpc_method", "grpc_code"] as const,
});

export const clientLatency = histogram({
  name: "grpc_client_handling_seconds",
  help: "Outbound RPC latency including retries.",
  labelNames: ["grpc_service", "grpc_method"] as const,
});

export const clientRetries = counter({
  name: "grpc_client_retries_total",
  help: "Outbound idempotent reads retried after UNAVAILABLE.",
  labelNames: ["grpc_service", "grpc_method"] as const,
});

/** "/pkg.Service/Method" -> ["pkg.Service", "Method"]. */
export function splitPath(path: string): [string, string] {
  const [, service = "", method = ""] = path.split("/");
  return [service, method];
}
