import { loadFileDescriptorSetFromBuffer, type PackageDefinition } from "@grpc/proto-loader";
import { descriptorSetBase64 } from "./descriptors-data.js";

/** The package definition of every control-plane proto, for server reflection. */
export function loadPackageDefinition(): PackageDefinition {
  return loadFileDescriptorSetFromBuffer(Buffer.from(descriptorSetBase64, "base64"));
}
