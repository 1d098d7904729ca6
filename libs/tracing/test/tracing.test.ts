import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import test from "ava";
import { ConfigError } from "@controlplane/config";
import {
  activeTracer,
  context,
  contextFromTraceparent,
  SpanKind,
  startTracing,
  trace,
  traceparentOf,
  tracesUrl,
  loadTracingEnv,
  withSpan,
} from "@controlplane/tracing";
import { InMemorySpanExporter } from "@controlplane/tracing/testing";

// Tracing is process-wide state: every test here runs alone.

test.serial("tracing is off unless an OTLP endpoint (or an exporter) is given, and off costs nothing", async (t) => {
  const tracing = startTracing({ serviceName: "test", env: {} });
  t.false(tracing.enabled);
  t.is(activeTracer(), undefined);
  t.is(traceparentOf(), null);
  // Nothing registered: the API answers with its no-op implementations.
  t.false(trace.getTracer("anything").startSpan("x").isRecording());
  await tracing.stop();
});

test.serial("OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none keep it off even with an endpoint", async (t) => {
  for (const env of [
    { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "true" },
    { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_TRACES_EXPORTER: "none" },
  ]) {
    t.false(startTracing({ serviceName: "test", env }).enabled, JSON.stringify(env));
  }
});

test.serial("an endpoint turns it on; traces go to <endpoint>/v1/traces unless a traces endpoint is given", async (t) => {
  t.is(tracesUrl(loadTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" })), "http://collector:4318/v1/traces");
  t.is(tracesUrl(loadTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://b/x" })), "https://b/x");
  t.is(tracesUrl(loadTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "" })), undefined, "an empty value is unset");
  const tracing = startTracing({ serviceName: "test", env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" } });
  t.true(tracing.enabled);
  t.truthy(activeTracer());
  t.throws(() => startTracing({ serviceName: "again", env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" } }), {
    message: /already started/,
  });
  await tracing.stop();
  t.is(activeTracer(), undefined, "stop turns it off again");
});

test.serial("a bad OTEL_* value stops the start, naming the variable", (t) => {
  for (const [variable, value] of [
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"],
    ["OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"],
    ["OTEL_TRACES_SAMPLER", "sometimes"],
    ["OTEL_TRACES_SAMPLER_ARG", "2"],
    ["OTEL_TRACES_EXPORTER", "zipkin"],
  ] as const) {
    const error = t.throws(() => startTracing({ serviceName: "test", env: { [variable]: value } }), { instanceOf: ConfigError });
    t.regex(error!.message, new RegExp(variable));
  }
});

test.serial("spans carry the process's name, OTEL_SERVICE_NAME first; context crosses as a W3C traceparent", async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing({ serviceName: "task-queue", exporter, env: { OTEL_SERVICE_NAME: "tq-east" } });
  t.teardown(() => tracing.stop());
  const tracer = activeTracer()!;
  const parent = tracer.startSpan("parent", { kind: SpanKind.SERVER });
  const traceparent = withSpan(parent, () => traceparentOf());
  t.regex(traceparent!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.is(traceparent, `00-${parent.spanContext().traceId}-${parent.spanContext().spanId}-01`);
  const child = tracer.startSpan("child", {}, contextFromTraceparent(traceparent));
  child.end();
  parent.end();
  const [exportedChild] = exporter.getFinishedSpans();
  t.is(exportedChild!.parentSpanContext?.spanId, parent.spanContext().spanId);
  t.is(exportedChild!.resource.attributes["service.name"], "tq-east");
});

test.serial("libraries' own spans are silenced, and what they start stays a child of ours", async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing({ serviceName: "test", exporter, env: {} });
  t.teardown(() => tracing.stop());
  const ours = activeTracer()!.startSpan("ours");
  const foreign = trace.getTracer("slonik.interceptors");
  await withSpan(ours, () =>
    foreign.startActiveSpan("slonik.executeQuery", async (span) => {
      t.false(span.isRecording());
      activeTracer()!.startSpan("inner").end();
      span.end(); // must not end ours
    }),
  );
  t.true(ours.isRecording(), "the library's end() did not end our span");
  ours.end();
  const names = exporter.getFinishedSpans().map((s) => s.name);
  t.deepEqual(names, ["inner", "ours"]);
  t.is(exporter.getFinishedSpans()[0]!.parentSpanContext?.spanId, ours.spanContext().spanId);
  t.is(trace.getSpan(context.active()), undefined);
});

test.serial("OTEL_TRACES_SAMPLER=always_off records nothing but still hands the context on", async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing({ serviceName: "test", exporter, env: { OTEL_TRACES_SAMPLER: "always_off" } });
  t.teardown(() => tracing.stop());
  const span = activeTracer()!.startSpan("unsampled");
  t.false(span.isRecording());
  t.regex(withSpan(span, () => traceparentOf())!, /-00$/, "propagated as not sampled");
  span.end();
  t.deepEqual(exporter.getFinishedSpans(), []);
});

test.serial("with an endpoint, spans reach an OTLP/HTTP collector as protobuf at <endpoint>/v1/traces", async (t) => {
  const received: Array<{ url?: string; type?: string; bytes: number }> = [];
  const collector = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ url: request.url, type: request.headers["content-type"], bytes: Buffer.concat(chunks).length });
      response.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
  t.teardown(() => collector.close());
  const { port } = collector.address() as AddressInfo;
  const tracing = startTracing({ serviceName: "gateway", env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } });
  activeTracer()!.startSpan("POST /api/daemon/heartbeat", { kind: SpanKind.SERVER }).end();
  await tracing.stop(); // flushes the batch
  t.is(received.length, 1);
  t.like(received[0], { url: "/v1/traces", type: "application/x-protobuf" });
  t.true(received[0]!.bytes > 0);
});
