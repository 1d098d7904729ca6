import test from "ava";
import { ConfigError } from "@controlplane/config";
import { gatewayEnv, loadGatewayConfig } from "../src/config.js";

test("the environment's strings become numbers, flags and addresses", (t) => {
  const config = loadGatewayConfig({
    GATEWAY_PORT: "0",
    AUTH_CACHE_TTL_MS: "400",
    WS_SEND_QUEUE_FRAMES: "16",
    TASK_QUEUE_GRPC_ADDR: "dns:///task-queue:50053",
  });
  t.like(config, { GATEWAY_PORT: 0, AUTH_CACHE_TTL_MS: 400, WS_SEND_QUEUE_FRAMES: 16, TASK_QUEUE_GRPC_ADDR: "dns:///task-queue:50053" });
});

test("an empty environment takes a default for every variable", (t) => {
  const config: Record<string, unknown> = loadGatewayConfig({});
  const missing = Object.keys(gatewayEnv.shape).filter((name) => config[name] === undefined);
  t.deepEqual(missing, []);
});

test("ports are 0..65535; durations, sizes and queue lengths positive whole numbers; each bad one named", (t) => {
  t.is(loadGatewayConfig({ GATEWAY_PORT: "65535" }).GATEWAY_PORT, 65535);
  const error = t.throws(() => loadGatewayConfig({ GATEWAY_PORT: "65536", BODY_LIMIT_BYTES: "0", WS_PING_INTERVAL_MS: "1.5", WS_SEND_QUEUE_FRAMES: "many" }), {
    instanceOf: ConfigError,
  });
  for (const name of ["GATEWAY_PORT", "BODY_LIMIT_BYTES", "WS_PING_INTERVAL_MS", "WS_SEND_QUEUE_FRAMES"]) {
    t.regex(error.message, new RegExp(`(^|; |: )${name}: `), name);
  }
});

test("a log level outside pino's is refused", (t) => {
  t.is(loadGatewayConfig({ LOG_LEVEL: "silent" }).LOG_LEVEL, "silent");
  t.throws(() => loadGatewayConfig({ LOG_LEVEL: "verbose" }), { message: /LOG_LEVEL: / });
});

test("the heartbeat batch interval is 0..1000 ms, 20 by default; 0 sends each loop turn's beats at once", (t) => {
  t.is(loadGatewayConfig({}).HEARTBEAT_BATCH_INTERVAL_MS, 20);
  t.is(loadGatewayConfig({ HEARTBEAT_BATCH_INTERVAL_MS: "0" }).HEARTBEAT_BATCH_INTERVAL_MS, 0);
  for (const bad of ["-1", "1001", "2.5"]) {
    t.throws(() => loadGatewayConfig({ HEARTBEAT_BATCH_INTERVAL_MS: bad }), { message: /HEARTBEAT_BATCH_INTERVAL_MS: / }, bad);
  }
});
