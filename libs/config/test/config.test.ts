import test from "ava";
import { address, ConfigError, loadConfig, port, url, z } from "@controlplane/config";

const schema = z.object({
  DATABASE_URL: url(["postgres"], "postgres://localhost/db"),
  GRPC_PORT: port(50051),
  PEER: address("127.0.0.1:1"),
});

test("defaults apply when variables are absent", (t) => {
  t.deepEqual(loadConfig(schema, {}), { DATABASE_URL: "postgres://localhost/db", GRPC_PORT: 50051, PEER: "127.0.0.1:1" });
});

test("a bad value fails fast with a message naming each variable", (t) => {
  const error = t.throws(() => loadConfig(schema, { DATABASE_URL: "mysql://x", GRPC_PORT: "70000", PEER: "nohost" }), {
    instanceOf: ConfigError,
  });
  t.regex(error!.message, /DATABASE_URL: must be a postgres:\/\/ URL/);
  t.regex(error!.message, /GRPC_PORT: /);
  t.regex(error!.message, /PEER: must be host:port/);
});
