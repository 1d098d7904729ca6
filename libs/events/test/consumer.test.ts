import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import test from "ava";
import { createDbPool, migrate, sql, type DatabasePool } from "@controlplane/db";
import { closeEventBus, connectEventBus, encodeEvent, EventMeta, startConsumer, subjectFor, type EventBus } from "@controlplane/events";
import { createLogger } from "@controlplane/log";
import { createTestDatabase, createTestEvents, NATS_URL, query, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";

const log = createLogger("test", "silent");
const SCHEMA = "consumer_test";
let db: TestDatabase;
let events: TestEvents;
let bus: EventBus;
let pool: DatabasePool;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  await migrate({
    databaseUrl: db.url,
    schema: SCHEMA,
    dir: fileURLToPath(new URL("../../db/test/fixtures/migrations", import.meta.url)),
    log,
  });
  pool = await createDbPool(db.url, { name: "consumer-test", maxSize: 4 });
  bus = await connectEventBus({ url: NATS_URL, name: "consumer-test", stream: events.stream, subjectRoot: events.subjectRoot });
});

test.after.always(async () => {
  await closeEventBus(bus);
  await pool?.end();
  await events?.close();
  await db?.drop();
});

/** Publishes a profile.deleted event directly, as the relay would (message id = event id). */
async function publish(profileId: string, eventId: string = randomUUID()): Promise<string> {
  const payload = { meta: EventMeta.fromPartial({ eventId, workspaceId: randomUUID() }), profileId, detachedRuntimeCount: 0 };
  await bus.js.publish(subjectFor(bus.subjectRoot, "profile.deleted"), encodeEvent("profile.deleted", payload), { msgID: eventId });
  return eventId;
}

test.serial("a durable consumer applies each event once, retries failures, and resumes after a restart", async (t) => {
  const attempts = new Map<string, number>();
  // Idempotent by its own write, as the services' handlers are: keyed by the
  // event id, a redelivery of an applied event changes nothing.
  const handler = async (event: { meta?: EventMeta; profileId: string }) => {
    const count = (attempts.get(event.profileId) ?? 0) + 1;
    attempts.set(event.profileId, count);
    if (event.profileId === "flaky" && count === 1) throw new Error("transient failure");
    await pool.query(sql.unsafe`INSERT INTO consumer_test.thing (id, name) VALUES (${event.meta!.eventId}, ${event.profileId}) ON CONFLICT (id) DO NOTHING`);
  };
  const names = async () => (await query<{ name: string }>(db.url, "SELECT name FROM consumer_test.thing ORDER BY name")).map((r) => r.name);

  let consumer = await startConsumer({ bus, durable: "test-consumer", type: "profile.deleted", handler, log });
  const duplicateId = await publish("once");
  await publish("once", duplicateId); // same message id: dropped by the stream
  await publish("flaky");
  await waitFor("both events applied", async () => (await names()).length === 2);
  t.deepEqual(await names(), ["flaky", "once"]);
  t.is(attempts.get("flaky"), 2, "the failed event was redelivered");
  t.is(attempts.get("once"), 1);

  await consumer.stop();
  await publish("while stopped");
  consumer = await startConsumer({ bus, durable: "test-consumer", type: "profile.deleted", handler, log });
  await waitFor("the event published while stopped", async () => (await names()).includes("while stopped"));
  await consumer.stop();
  t.deepEqual(await names(), ["flaky", "once", "while stopped"]);
});
