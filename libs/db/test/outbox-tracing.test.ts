import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import test from "ava";
import { createDbPool, migrate, Outbox, publishedSize, sql, statementSummary, type DatabasePool } from "@controlplane/db";
import { closeEventBus, connectEventBus, startConsumer, subjectFor, type EventBus, type RunningConsumer } from "@controlplane/events";
import { createLogger } from "@controlplane/log";
import { activeTracer, SpanKind, startTracing, withSpan, type Tracing } from "@controlplane/tracing";
import { InMemorySpanExporter, type ReadableSpan } from "@controlplane/tracing/testing";
import { createTestDatabase, createTestEvents, NATS_URL, query, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";

// Tracing is process-wide state: every test here runs alone, in order (the last turns it off).
const SCHEMA = "kit_trace";
const FIXTURES = fileURLToPath(new URL("fixtures/migrations", import.meta.url));
const log = createLogger("test", "silent");
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let db: TestDatabase;
let events: TestEvents;
let pool: DatabasePool;
let bus: EventBus;
let outbox: Outbox;
let consumer: RunningConsumer;
const handled: Array<{ name: string; traceId?: string }> = [];

test.before(async () => {
  // Started before the pool opens: the pool traces its queries only then.
  tracing = startTracing({ serviceName: "kit-test", exporter, env: {} });
  db = await createTestDatabase();
  events = await createTestEvents();
  await migrate({ databaseUrl: db.url, schema: SCHEMA, dir: FIXTURES, log });
  pool = await createDbPool(db.url, { name: "kit-trace", maxSize: 4 });
  bus = await connectEventBus({ url: NATS_URL, name: "kit-trace", stream: events.stream, subjectRoot: events.subjectRoot });
  outbox = new Outbox(pool, SCHEMA, bus, log, { pollIntervalMs: 50 });
  outbox.start();
  consumer = await startConsumer({
    bus,
    log,
    durable: "kit-trace-profiles",
    type: "profile.created",
    handler: async (event) => {
      await pool.query(sql.unsafe`SELECT count(*) FROM kit_trace.thing`);
      handled.push({ name: event.profile!.displayName, traceId: activeTracer()?.startSpan("probe").spanContext().traceId });
    },
  });
});

test.after.always(async () => {
  await consumer?.stop();
  await outbox?.stop();
  if (bus) await closeEventBus(bus);
  await pool?.end();
  await events?.close();
  await db?.drop();
  await tracing?.stop();
});

const profile = (name: string) => ({
  profile: {
    id: randomUUID(),
    workspaceId: randomUUID(),
    displayName: name,
    protocolFamily: "claude",
    commandName: "claude",
    fixedArgs: [],
    visibility: "workspace",
    enabled: true,
  },
});
const spanId = (span: ReadableSpan | { spanContext(): { spanId: string } }) => span.spanContext().spanId;

test.serial("an event carries the context it was written in: row, NATS header, and a CONSUMER span as its child", async (t) => {
  const request = activeTracer()!.startSpan("request", { kind: SpanKind.SERVER });
  let eventId = "";
  await withSpan(request, () =>
    outbox.transaction(async (tx) => {
      await tx.query(sql.unsafe`INSERT INTO kit_trace.thing (id, name) VALUES (${randomUUID()}, 'traced')`);
      eventId = await outbox.write(tx, "profile.created", profile("traced"), { workspaceId: randomUUID() });
    }),
  );
  request.end();
  const consumed = await waitFor("the consumer span", () => exporter.getFinishedSpans().find((s) => s.name === "process profile.created"));
  const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === request.spanContext().traceId);
  const created = spans.find((s) => s.name === "create profile.created")!;
  t.is(created.kind, SpanKind.PRODUCER);
  t.is(created.parentSpanContext?.spanId, spanId(request));
  t.like(created.attributes, { "messaging.message.id": eventId, "messaging.destination.name": subjectFor(events.subjectRoot, "profile.created") });
  t.is(consumed.kind, SpanKind.CONSUMER);
  t.is(consumed.parentSpanContext?.spanId, spanId(created), "the consumer's parent is the span that wrote the event");
  t.like(consumed.attributes, { "messaging.consumer.group.name": "kit-trace-profiles", "messaging.message.id": eventId, "messaging.outcome": "ack" });
  t.is(handled.find((h) => h.name === "traced")?.traceId, request.spanContext().traceId, "the handler runs inside the trace");

  // The statements: under the request (the INSERTs) and under the consumer (its SELECT), named by their first line.
  const statements = spans.filter((s) => s.attributes["db.system.name"] === "postgresql");
  t.true(statements.some((s) => s.name === "INSERT INTO kit_trace.thing (id, name) VALUES ($1, 'traced')" && s.parentSpanContext?.spanId === spanId(request)));
  t.true(statements.some((s) => s.name.startsWith('INSERT INTO "kit_trace"."outbox"') && s.parentSpanContext?.spanId === spanId(request)));
  await waitFor("the consumer's statement", () =>
    exporter.getFinishedSpans().some((s) => s.name === "SELECT count(*) FROM kit_trace.thing" && s.parentSpanContext?.spanId === spanId(consumed)),
  );

  // The published message carries the header the row stored.
  const stored = await bus.jsm.streams.getMessage(events.stream, { last_by_subj: subjectFor(events.subjectRoot, "profile.created") });
  t.is(stored!.header.get("traceparent"), `00-${created.spanContext().traceId}-${spanId(created)}-01`);
});

test.serial("statements that no trace started (the relay's polls) make no spans", (t) => {
  const dbSpans = exporter.getFinishedSpans().filter((s) => s.attributes["db.system.name"]);
  t.true(dbSpans.length > 0);
  t.true(
    dbSpans.every((s) => s.parentSpanContext !== undefined),
    "every statement span has a parent",
  );
  t.false(dbSpans.some((s) => /FOR UPDATE SKIP LOCKED|outbox_parked/.test(s.name) || s.name.startsWith("SELECT id, event_type")));
});

test.serial("a statement's span name: first line, short lines joined, spaces squeezed, cut at 80", (t) => {
  t.is(statementSummary("\n      INSERT INTO registry.member (a, b)\n      VALUES ($1, $2)"), "INSERT INTO registry.member (a, b)");
  t.is(statementSummary("SELECT\n  id,   name\n  FROM things WHERE id = $1"), "SELECT id, name FROM things WHERE id = $1");
  t.is(statementSummary("   \n\n"), "query");
  const long = statementSummary(`UPDATE t SET ${Array.from({ length: 40 }, (_, i) => `c${i} = $${i + 1}`).join(", ")}`);
  t.is(long.length, 80);
  t.true(long.endsWith("…"));
});

test.serial("the size check counts the traceparent header the relay adds", (t) => {
  const id = randomUUID();
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  t.is(publishedSize(10, id, traceparent) - publishedSize(10, id), `traceparent: ${traceparent}\r\n`.length);
  t.is(publishedSize(10, id, null), publishedSize(10, id));
});

test.serial("with tracing off, events carry no trace context and are consumed as before", async (t) => {
  await tracing.stop();
  exporter.reset();
  await outbox.transaction((tx) => outbox.write(tx, "profile.created", profile("untraced"), { workspaceId: randomUUID() }));
  await waitFor("the untraced event to be handled", () => handled.some((h) => h.name === "untraced"));
  const stored = await bus.jsm.streams.getMessage(events.stream, { last_by_subj: subjectFor(events.subjectRoot, "profile.created") });
  t.false(stored!.header?.has("traceparent") ?? false);
  t.deepEqual(exporter.getFinishedSpans(), []);
  t.deepEqual(await query(db.url, "SELECT traceparent FROM kit_trace.outbox"), [], "relayed and deleted");
});
