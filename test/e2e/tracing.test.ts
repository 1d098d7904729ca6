import test from "ava";
import { SpanKind, startTracing, type Tracing } from "@controlplane/tracing";
import { InMemorySpanExporter, type ReadableSpan } from "@controlplane/tracing/testing";
import { waitFor } from "@controlplane/testkit";
import { http } from "../support/http.js";
import { seedWorkspace, startStack, type Stack } from "../support/stack.js";

// Every service in this process, as all-in-one runs them (calling each
// other in process; the gRPC kit's own tests cover spans over loopback):
// one provider, spans handed to a real in-memory exporter as each ends.
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let stack: Stack;
test.before(async () => {
  tracing = startTracing({ serviceName: "controlplane-test", exporter, env: {} });
  stack = await startStack({}, { inProcess: true });
});
test.after.always(async () => {
  await stack?.stop();
  await tracing?.stop();
});

const idOf = (span: ReadableSpan) => span.spanContext().spanId;
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const traceOf = (traceId: string) => exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);

function register(token: string, workspaceId: string, daemonId: string, headers: Record<string, string> = {}) {
  return http(stack.gatewayUrl, "POST", "/api/daemon/register", {
    token,
    headers,
    body: { workspace_id: workspaceId, daemon_id: daemonId, device_name: "laptop", runtimes: [{ type: "claude", version: "2.1", status: "online" }] },
  });
}

test("a daemon's register is one trace: HTTP -> gRPC client -> gRPC server -> SQL and event -> the consumer that learns it", async (t) => {
  const ws = await seedWorkspace(stack);
  const answer = await register(ws.member.pat, ws.workspaceId, "traced-daemon", { "x-request-id": "req-traced-register" });
  t.is(answer.status, 200);

  const http = await waitFor("the HTTP span", () =>
    exporter.getFinishedSpans().find((s) => s.name === "POST /api/daemon/register" && s.attributes.request_id === "req-traced-register"),
  );
  t.is(http.kind, SpanKind.SERVER);
  t.is(parentOf(http), undefined, "no traceparent came in: the request starts the trace");
  t.like(http.attributes, { "http.request.method": "POST", "http.route": "/api/daemon/register", "http.response.status_code": 200 });
  const traceId = http.spanContext().traceId;

  // The liveness consumer learns the daemon from daemon.registered, written by the registry's Register.
  const consumer = await waitFor("the consumer span of daemon.registered", () =>
    traceOf(traceId).find((s) => s.name === "process daemon.registered" && s.attributes["messaging.consumer.group.name"] === "liveness-daemon-registered"),
  );
  const spans = traceOf(traceId);
  const byId = new Map(spans.map((s) => [idOf(s), s]));

  // gateway -> registry: the CLIENT span of Register is the HTTP span's child...
  const registerClient = spans.find((s) => s.kind === SpanKind.CLIENT && s.attributes["rpc.method"] === "RegisterDaemon");
  t.truthy(registerClient, "a CLIENT span for RuntimeRegistryService/RegisterDaemon");
  t.is(registerClient!.name, "controlplane.registry.v1.RuntimeRegistryService/RegisterDaemon");
  t.is(parentOf(registerClient!), idOf(http));
  t.is(registerClient!.attributes.request_id, "req-traced-register");
  t.is(registerClient!.attributes["rpc.grpc.status_code"], 0);

  // ...the registry's SERVER span is the client span's child (trace context crossed in the metadata)...
  const registerServer = spans.find((s) => s.kind === SpanKind.SERVER && s.attributes["rpc.method"] === "RegisterDaemon");
  t.truthy(registerServer, "a SERVER span for RegisterDaemon");
  t.is(parentOf(registerServer!), idOf(registerClient!));
  t.like(registerServer!.attributes, {
    "rpc.system": "grpc",
    "rpc.service": "controlplane.registry.v1.RuntimeRegistryService",
    request_id: "req-traced-register",
  });

  // ...its statements are its children, named by their first line, with no parameter in sight...
  const statements = spans.filter((s) => s.attributes["db.system.name"] === "postgresql" && parentOf(s) === idOf(registerServer!));
  t.true(statements.length > 0, "the Register handler's SQL is traced under it");
  for (const statement of statements) {
    t.is(statement.kind, SpanKind.CLIENT);
    t.false(statement.name.includes(ws.workspaceId), `no value in "${statement.name}"`);
    t.false(statement.name.includes("\n"));
  }
  t.true(
    statements.some((s) => /^INSERT INTO "registry"\."outbox"/.test(s.name)),
    "the outbox INSERT is one of them",
  );

  // ...the event it wrote has a PRODUCER span, child of the handler's...
  const created = spans.find((s) => s.name === "create daemon.registered");
  t.truthy(created, "a PRODUCER span for the event");
  t.is(created!.kind, SpanKind.PRODUCER);
  t.is(parentOf(created!), idOf(registerServer!));

  // ...and the consumer's span is the child of the span that wrote the event, its own SQL under it.
  t.is(consumer.kind, SpanKind.CONSUMER);
  t.is(parentOf(consumer), idOf(created!), "the consumer continues the trace the event was written in");
  t.is(consumer.attributes["messaging.message.id"], created!.attributes["messaging.message.id"]);
  await waitFor("the consumer's SQL", () => traceOf(traceId).some((s) => s.attributes["db.system.name"] && parentOf(s) === idOf(consumer)));

  // One connected trace: every span's parent is in it, and only the HTTP span is a root
  // (waited for: the other consumer, of runtime.registered, may still be at work).
  const connected = (spans: ReadableSpan[]) => {
    const ids = new Set(spans.map(idOf));
    return spans.every((s) => s === http || ids.has(parentOf(s)!));
  };
  await waitFor("every span's parent to be exported", () => connected(traceOf(traceId))).catch(() => undefined);
  const settled = traceOf(traceId);
  const ids = new Set(settled.map(idOf));
  const roots = settled.filter((s) => parentOf(s) === undefined);
  t.deepEqual(
    roots.map((s) => s.name),
    ["POST /api/daemon/register"],
  );
  for (const span of settled) {
    if (span !== http) t.true(ids.has(parentOf(span)!), `${span.name}'s parent is in the trace`);
  }
  // Slonik's own spans are not exported: a trace reads in our terms.
  t.false(settled.some((s) => s.name.startsWith("slonik.")));
  t.true(byId.size >= 6);
});

test("an incoming traceparent is continued, and the gateway's answer is unchanged by it", async (t) => {
  const ws = await seedWorkspace(stack);
  const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const callerSpan = "00f067aa0ba902b7";
  const answer = await register(ws.member.pat, ws.workspaceId, "traced-daemon-2", { traceparent: `00-${callerTrace}-${callerSpan}-01` });
  t.is(answer.status, 200);
  const http = await waitFor("the HTTP span", () =>
    exporter.getFinishedSpans().find((s) => s.name === "POST /api/daemon/register" && s.spanContext().traceId === callerTrace),
  );
  t.is(parentOf(http), callerSpan);
  await waitFor("the registry's SERVER span in the caller's trace", () =>
    traceOf(callerTrace).some((s) => s.kind === SpanKind.SERVER && s.attributes["rpc.method"] === "RegisterDaemon"),
  );
});

test("a failing request's span carries its status; a 4xx is not a server fault", async (t) => {
  const answer = await register("not-a-token", "00000000-0000-0000-0000-000000000000", "nobody", { "x-request-id": "req-refused" });
  t.is(answer.status, 401);
  const http = await waitFor("the HTTP span", () =>
    exporter.getFinishedSpans().find((s) => s.attributes.request_id === "req-refused" && s.kind === SpanKind.SERVER && s.name.startsWith("POST")),
  );
  t.is(http.attributes["http.response.status_code"], 401);
  t.not(http.status.code, 2, "a refused request is not an error of ours");
});
