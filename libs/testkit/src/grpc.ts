import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { credentials, loadPackageDefinition, makeClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";

const require = createRequire(import.meta.url);

/** grpc.health.v1 Check over a real connection: "SERVING", "NOT_SERVING", or the error. */
export function checkHealth(address: string, service = ""): Promise<string> {
  const HealthClient = makeClientConstructor(healthService, "grpc.health.v1.Health");
  const client = new HealthClient(address, credentials.createInsecure()) as unknown as Client & {
    Check(req: { service: string }, cb: (error: ServiceError | null, res?: { status: string }) => void): void;
  };
  return new Promise((resolve, reject) => {
    client.Check({ service }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response!.status);
    });
  });
}

/** The service names a server lists through gRPC server reflection (v1). */
export function listReflectedServices(address: string): Promise<string[]> {
  const root = join(dirname(require.resolve("@grpc/reflection/package.json")), "build", "proto");
  const definition = loadSync("grpc/reflection/v1/reflection.proto", { includeDirs: [root], keepCase: true, oneofs: true });
  const loaded = loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: new (address: string, creds: unknown) => ReflectionClient } } };
  };
  const client = new loaded.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on("data", (response: { list_services_response?: { service: Array<{ name: string }> } }) => {
      resolve(response.list_services_response?.service.map((s) => s.name) ?? []);
      call.end();
      client.close();
    });
    call.on("error", reject);
    call.write({ list_services: "*" });
  });
}

interface ReflectionClient {
  ServerReflectionInfo(): NodeJS.EventEmitter & { write(message: unknown): void; end(): void };
  close(): void;
}
