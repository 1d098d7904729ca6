import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, MethodOptions_IdempotencyLevel, type FileDescriptorSet } from "@bufbuild/protobuf/wkt";
import { loadFileDescriptorSetFromBuffer, type PackageDefinition } from "@grpc/proto-loader";
import { descriptorSetBase64 } from "./descriptors-data.js";

/** The package definition of every control-plane proto, for server reflection. */
export function loadPackageDefinition(): PackageDefinition {
  return loadFileDescriptorSetFromBuffer(Buffer.from(descriptorSetBase64, "base64"));
}

/** How a method's `option idempotency_level` reads in proto/ (unset: "IDEMPOTENCY_UNKNOWN"). */
export type IdempotencyLevel = keyof typeof MethodOptions_IdempotencyLevel;

let levels: ReadonlyMap<string, IdempotencyLevel> | undefined;

/**
 * Every RPC of proto/ by gRPC path (`/package.Service/Method`) with its
 * declared idempotency level. Read from the compiled descriptors, not from
 * the generated service definitions: ts-proto's grpc-js output carries no
 * method options, and proto-loader drops `idempotency_level`.
 */
export function idempotencyLevels(): ReadonlyMap<string, IdempotencyLevel> {
  levels ??= readLevels(fromBinary(FileDescriptorSetSchema, Buffer.from(descriptorSetBase64, "base64")));
  return levels;
}

function readLevels(set: FileDescriptorSet): Map<string, IdempotencyLevel> {
  const byPath = new Map<string, IdempotencyLevel>();
  for (const file of set.file) {
    for (const service of file.service) {
      for (const method of service.method) {
        const level = method.options?.idempotencyLevel ?? MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN;
        byPath.set(`/${file.package}.${service.name}/${method.name}`, MethodOptions_IdempotencyLevel[level] as IdempotencyLevel);
      }
    }
  }
  return byPath;
}

/**
 * Whether a call may be sent again after UNAVAILABLE: its RPC is marked
 * NO_SIDE_EFFECTS or IDEMPOTENT in proto/, the one place that says so (the
 * gRPC clients and the Envoy routes both follow it).
 */
export function isRetryable(path: string): boolean {
  const level = idempotencyLevels().get(path);
  return level === "NO_SIDE_EFFECTS" || level === "IDEMPOTENT";
}
