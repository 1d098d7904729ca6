import test from "ava";
import { createClient, GrpcServer, NotFoundError, runInScope, runOutsideScope, status, type UnaryHandlers } from "@controlplane/grpc";
import { createLogger } from "@controlplane/log";
import { ProfileCatalogServiceService } from "@controlplane/proto/profiles/v1/profiles";
import { activeTracer, SpanKind, SpanStatusCode, startTracing, withSpan } from "@controlplane/tracing";
import { InMemorySpanExporter } from "@controlplane/tracing/testing";

// Tracing is process-wide state: these tests run one at a time.
const log = createLogger("test", "silent");

async function profileServer(getProfile: UnaryHandlers<typeof ProfileCatalogServiceService>["getProfile"]) {
  const server = new GrpcServer(log).add(ProfileCatalogServiceService, { getProfile } as UnaryHandlers<typeof ProfileCatalogServiceService>);
  const port = await server.listen(0, "127.0.0.1");
  const client = createClient(ProfileCatalogServiceService, `127.0.0.1:${port}`);
  const stop = async () => {
    client.close();
    await server.shutdown(1_000);
  };
  return { client, stop };
}

test.serial("with tracing off no trace context is sent, and calls work as before", async (t) => {
  const seen: string[][] = [];
  const { client, stop } = await profileServer(async (_request, call) => {
    seen.push(Object.keys(call.metadata.getMap()));
    return { profile: undefined };
  });
  t.teardown(stop);
  await client.getProfile({ workspaceId: "w", profileId: "p" });
  t.false(seen[0]!.includes("traceparent"));
  t.true(seen[0]!.includes("x-request-id"));
});

test.serial("a call is a CLIENT span and its handler a SERVER span, child of it, both with the request id and code", async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing({ serviceName: "test", exporter, env: {} });
  t.teardown(() => tracing.stop());
  let handlerTraceparent: string | undefined;
  const { client, stop } = await profileServer(async (request, call) => {
    handlerTraceparent = call.metadata.get("traceparent")[0] as string;
    activeTracer()!.startSpan("work in the handler").end();
    if (request.profileId === "missing") throw new NotFoundError("runtime profile not found");
    if (request.profileId === "broken") throw new Error("boom");
    return { profile: undefined };
  });
  t.teardown(stop);

  const request = activeTracer()!.startSpan("caller");
  await withSpan(request, () => runInScope({ requestId: "req-1" }, () => client.getProfile({ workspaceId: "w", profileId: "p" })));
  request.end();
  const spans = exporter.getFinishedSpans();
  const clientSpan = spans.find((s) => s.kind === SpanKind.CLIENT)!;
  const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER)!;
  const inner = spans.find((s) => s.name === "work in the handler")!;
  t.is(clientSpan.name, "controlplane.profiles.v1.ProfileCatalogService/GetProfile");
  t.is(clientSpan.parentSpanContext?.spanId, request.spanContext().spanId);
  t.is(serverSpan.parentSpanContext?.spanId, clientSpan.spanContext().spanId);
  t.is(inner.parentSpanContext?.spanId, serverSpan.spanContext().spanId, "the handler runs in its SERVER span");
  t.is(handlerTraceparent, `00-${clientSpan.spanContext().traceId}-${clientSpan.spanContext().spanId}-01`);
  for (const span of [clientSpan, serverSpan]) {
    t.like(span.attributes, {
      "rpc.system": "grpc",
      "rpc.service": "controlplane.profiles.v1.ProfileCatalogService",
      "rpc.method": "GetProfile",
      "rpc.grpc.status_code": status.OK,
      request_id: "req-1",
    });
  }

  exporter.reset();
  await t.throwsAsync(client.getProfile({ workspaceId: "w", profileId: "missing" }));
  const notFound = exporter.getFinishedSpans();
  t.is(notFound.find((s) => s.kind === SpanKind.CLIENT)!.status.code, SpanStatusCode.ERROR, "the caller did not get its answer");
  t.is(notFound.find((s) => s.kind === SpanKind.SERVER)!.status.code, SpanStatusCode.UNSET, "NOT_FOUND is not the server's fault");
  t.is(notFound.find((s) => s.kind === SpanKind.SERVER)!.attributes["rpc.grpc.status_code"], status.NOT_FOUND);

  exporter.reset();
  await t.throwsAsync(client.getProfile({ workspaceId: "w", profileId: "broken" }));
  const broken = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER)!;
  t.is(broken.status.code, SpanStatusCode.ERROR);
  t.is(broken.attributes["rpc.grpc.status_code"], status.INTERNAL);
});

test.serial("work run outside the scope (a batch for many callers) is not filed under the caller's trace", async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing({ serviceName: "test", exporter, env: {} });
  t.teardown(() => tracing.stop());
  const { client, stop } = await profileServer(async () => ({ profile: undefined }));
  t.teardown(stop);
  const caller = activeTracer()!.startSpan("caller");
  await withSpan(caller, () => runOutsideScope(() => client.getProfile({ workspaceId: "w", profileId: "p" })));
  caller.end();
  const clientSpan = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!;
  t.is(clientSpan.parentSpanContext, undefined);
  t.not(clientSpan.spanContext().traceId, caller.spanContext().traceId);
});
