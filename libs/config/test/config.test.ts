import test from "ava";
import { address, ConfigError, flag, loadConfig, port, url, z } from "@controlplane/config";

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

test("a peer may be dns:/// to balance over every address of a name", (t) => {
  const peers = z.object({ PEER: address("127.0.0.1:1") });
  t.is(loadConfig(peers, { PEER: "dns:///registry.cp.svc.cluster.local:50051" }).PEER, "dns:///registry.cp.svc.cluster.local:50051");
  for (const bad of ["dns://registry:50051", "dns:///registry", "http://registry:50051"]) {
    t.throws(() => loadConfig(peers, { PEER: bad }), { instanceOf: ConfigError }, bad);
  }
});

test("flags read true/false, 1/0 and yes/no, and refuse anything else", (t) => {
  const flags = z.object({ ON: flag(true) });
  t.true(loadConfig(flags, {}).ON);
  t.false(loadConfig(flags, { ON: "false" }).ON);
  t.false(loadConfig(flags, { ON: "0" }).ON);
  t.true(loadConfig(flags, { ON: "yes" }).ON);
  t.throws(() => loadConfig(flags, { ON: "maybe" }), { instanceOf: ConfigError, message: /ON:/ });
});
