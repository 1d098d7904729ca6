import test from "ava";
import { CLAIM_LONG_POLL_MAX_MS, ConfigError } from "@controlplane/config";
import { loadTaskQueueConfig, taskQueueEnv } from "../src/config.js";

test("the environment's strings become numbers; an empty environment takes every default", (t) => {
  const config = loadTaskQueueConfig({ TASK_SWEEP_INTERVAL_MS: "200", DEFAULT_MAX_ATTEMPTS: "3", TASK_QUEUE_GRPC_PORT: "0" });
  t.is(config.TASK_SWEEP_INTERVAL_MS, 200);
  t.is(config.DEFAULT_MAX_ATTEMPTS, 3);
  t.is(config.TASK_QUEUE_GRPC_PORT, 0, "0 asks the OS for a port");
  const defaults: Record<string, unknown> = loadTaskQueueConfig({});
  t.deepEqual(
    Object.keys(taskQueueEnv.shape).filter((name) => defaults[name] === undefined),
    [],
    "no variable is left without a default",
  );
});

test("the long-poll may reach the front proxy's claim timeout, not beyond", (t) => {
  t.is(loadTaskQueueConfig({ CLAIM_LONG_POLL_MAX_MS: String(CLAIM_LONG_POLL_MAX_MS) }).CLAIM_LONG_POLL_MAX_MS, CLAIM_LONG_POLL_MAX_MS);
  const error = t.throws(() => loadTaskQueueConfig({ CLAIM_LONG_POLL_MAX_MS: String(CLAIM_LONG_POLL_MAX_MS + 1) }));
  t.is(error.message, `CLAIM_LONG_POLL_MAX_MS: at most ${CLAIM_LONG_POLL_MAX_MS} (the front proxy's claim timeout is set from it)`);
});

test("durations and counts must be positive whole numbers; each bad one is named", (t) => {
  const error = t.throws(() => loadTaskQueueConfig({ DISPATCH_TIMEOUT_MS: "0", PREPARE_LEASE_MS: "1.5", DEFAULT_MAX_ATTEMPTS: "-1", QUEUED_TTL_MS: "soon" }), {
    instanceOf: ConfigError,
  });
  for (const name of ["DISPATCH_TIMEOUT_MS", "PREPARE_LEASE_MS", "DEFAULT_MAX_ATTEMPTS", "QUEUED_TTL_MS"]) {
    t.regex(error.message, new RegExp(`(^|; |: )${name}: `), name);
  }
});

test("peers are host:port or dns:///host:port; anything else is refused", (t) => {
  t.is(loadTaskQueueConfig({ REGISTRY_GRPC_ADDR: "dns:///registry:50051" }).REGISTRY_GRPC_ADDR, "dns:///registry:50051");
  for (const bad of ["registry", "http://registry:50051", "registry:port", "a b:1"]) {
    t.throws(() => loadTaskQueueConfig({ LIVENESS_GRPC_ADDR: bad }), { message: /LIVENESS_GRPC_ADDR: must be host:port or dns:\/\/\/host:port/ }, bad);
  }
});

test("the database and NATS URLs must use their schemes", (t) => {
  t.throws(() => loadTaskQueueConfig({ DATABASE_URL: "mysql://db/x" }), { message: /DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/ });
  t.throws(() => loadTaskQueueConfig({ NATS_URL: "http://nats:4222" }), { message: /NATS_URL: / });
  t.is(loadTaskQueueConfig({ DATABASE_URL: "postgresql://u@db:5432/x" }).DATABASE_URL, "postgresql://u@db:5432/x");
});
