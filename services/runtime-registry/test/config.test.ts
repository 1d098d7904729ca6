import test from "ava";
import { ConfigError } from "@controlplane/config";
import { DEV_JWT_SECRET, loadRegistryConfig } from "../src/config.js";

test("without JWT_SECRET the development default is used (the service warns about it at start)", (t) => {
  t.is(loadRegistryConfig({}).JWT_SECRET, DEV_JWT_SECRET);
});

test("a JWT secret shorter than 16 characters is refused; 16 is enough", (t) => {
  const error = t.throws(() => loadRegistryConfig({ JWT_SECRET: "a".repeat(15) }), { instanceOf: ConfigError });
  t.regex(error.message, /JWT_SECRET: must be at least 16 characters/);
  t.is(loadRegistryConfig({ JWT_SECRET: "a".repeat(16) }).JWT_SECRET, "a".repeat(16));
});

test("the runtime collector's interval and retention are positive durations", (t) => {
  const config = loadRegistryConfig({ RUNTIME_GC_INTERVAL_MS: "200", RUNTIME_GC_RETENTION_MS: "1000" });
  t.deepEqual([config.RUNTIME_GC_INTERVAL_MS, config.RUNTIME_GC_RETENTION_MS], [200, 1000]);
  t.throws(() => loadRegistryConfig({ RUNTIME_GC_RETENTION_MS: "0" }), { message: /RUNTIME_GC_RETENTION_MS/ });
  t.throws(() => loadRegistryConfig({ RUNTIME_GC_INTERVAL_MS: "-5" }), { message: /RUNTIME_GC_INTERVAL_MS/ });
});

test("events stream and subject root names are restricted to what NATS subjects allow", (t) => {
  t.throws(() => loadRegistryConfig({ EVENTS_SUBJECT_ROOT: "control.plane" }), { message: /EVENTS_SUBJECT_ROOT: lower-case letters, digits, _ and - only/ });
  t.throws(() => loadRegistryConfig({ EVENTS_STREAM: "a b" }), { message: /EVENTS_STREAM: letters, digits, _ and - only/ });
  t.like(loadRegistryConfig({ EVENTS_STREAM: "TEST_1", EVENTS_SUBJECT_ROOT: "cptest-1" }), { EVENTS_STREAM: "TEST_1", EVENTS_SUBJECT_ROOT: "cptest-1" });
});
