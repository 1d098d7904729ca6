import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import test from "ava";
import { claimEvent, createDbPool, migrate, Outbox, sql, type DatabasePool } from "@controlplane/db";
import { closeEventBus, connectEventBus, type EventBus } from "@controlplane/events";
import { createLogger } from "@controlplane/log";
import { createTestDatabase, createTestEvents, NATS_URL, query, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";

const SCHEMA = "kit_test";
const log = createLogger("test", "silent");
let db: TestDatabase;
let events: TestEvents;
let pool: DatabasePool;
let bus: EventBus;
let outbox: Outbox;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  await migrate({ databaseUrl: db.url, schema: SCHEMA, dir: fileURLToPath(new URL("fixtures/migrations", import.meta.url)), log });
  pool = await createDbPool(db.url, { name: "kit-test", maxSize: 4 });
  bus = await connectEventBus({ url: NATS_URL, name: "kit-test", stream: events.stream, subjectRoot: events.subjectRoot });
  outbox = new Outbox(pool, SCHEMA, bus, log);
  outbox.start();
});

test.after.always(async () => {
  await outbox?.stop();
  await closeEventBus(bus);
  await pool?.end();
  await events?.close();
  await db?.drop();
});

function profileBody(name: string) {
  return {
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
  };
}

async function publishedNames(): Promise<string[]> {
  return (await events.read("profile.created")).map(({ event }) => event.profile!.displayName);
}

test.serial("an event committed with its state change reaches JetStream with its id as message id", async (t) => {
  const workspaceId = randomUUID();
  const eventId = await outbox.transaction(async (tx) => {
    await tx.query(sql.unsafe`INSERT INTO kit_test.thing (id, name) VALUES (${randomUUID()}, 'committed')`);
    return outbox.write(tx, "profile.created", profileBody("committed"), { workspaceId, actorId: "someone" });
  });
  const [published] = await waitFor("the committed event on JetStream", async () => {
    const all = await events.read("profile.created");
    return all.length > 0 ? all : undefined;
  });
  t.is(published!.msgId, eventId);
  t.like(published!.event.meta!, { eventId, workspaceId, actorId: "someone" });
  t.true(published!.event.meta!.occurredAt instanceof Date);
  t.is(published!.event.profile!.displayName, "committed");
  await waitFor("the outbox to be emptied", async () => (await query(db.url, "SELECT 1 FROM kit_test.outbox")).length === 0);
});

test.serial("an event written in a rolled-back transaction is never published", async (t) => {
  await t.throwsAsync(
    outbox.transaction(async (tx) => {
      await tx.query(sql.unsafe`INSERT INTO kit_test.thing (id, name) VALUES (${randomUUID()}, 'rolled back')`);
      await outbox.write(tx, "profile.created", profileBody("rolled back"), { workspaceId: randomUUID() });
      throw new Error("business rule said no");
    }),
    { message: "business rule said no" },
  );
  // A later committed event proves the relay ran past the rolled-back one.
  await outbox.transaction((tx) => outbox.write(tx, "profile.created", profileBody("marker"), { workspaceId: randomUUID() }));
  await waitFor("the marker event", async () => (await publishedNames()).includes("marker"));
  t.false((await publishedNames()).includes("rolled back"));
  t.deepEqual(await query(db.url, "SELECT name FROM kit_test.thing WHERE name = 'rolled back'"), []);
});

test.serial("a row relayed twice (crash between publish and delete) is stored once by JetStream", async (t) => {
  const before = (await publishedNames()).length;
  const eventId = randomUUID();
  const body = profileBody("relayed twice");
  const { encodeEvent, EventMeta } = await import("@controlplane/events");
  const bytes = Buffer.from(
    encodeEvent("profile.created", { ...body, meta: EventMeta.fromPartial({ eventId, workspaceId: randomUUID() }) }),
  );
  for (let i = 0; i < 2; i++) {
    await pool.query(sql.unsafe`INSERT INTO kit_test.outbox (id, event_type, payload) VALUES (${eventId}, 'profile.created', ${sql.binary(bytes)})`);
    outbox.kick();
    await waitFor("the row to be relayed", async () => (await query(db.url, "SELECT 1 FROM kit_test.outbox")).length === 0);
  }
  const names = await publishedNames();
  t.is(names.length, before + 1);
  t.is(names.filter((n) => n === "relayed twice").length, 1);
});

test.serial("events leave in commit order across many writers", async (t) => {
  const names = Array.from({ length: 40 }, (_, i) => `order-${String(i).padStart(2, "0")}`);
  for (const name of names) {
    await outbox.transaction((tx) => outbox.write(tx, "profile.created", profileBody(name), { workspaceId: randomUUID() }));
  }
  const published = await waitFor("all ordered events", async () => {
    const all = (await publishedNames()).filter((n) => n.startsWith("order-"));
    return all.length === names.length ? all : undefined;
  });
  t.deepEqual(published, names);
});

test("the inbox claims an event id once per consumer", async (t) => {
  const eventId = randomUUID();
  const first = await pool.transaction((tx) => claimEvent(tx, SCHEMA, "consumer-a", eventId));
  const again = await pool.transaction((tx) => claimEvent(tx, SCHEMA, "consumer-a", eventId));
  const other = await pool.transaction((tx) => claimEvent(tx, SCHEMA, "consumer-b", eventId));
  t.deepEqual([first, again, other], [true, false, true]);
  const rolledBack = randomUUID();
  await t.throwsAsync(
    pool.transaction(async (tx) => {
      await claimEvent(tx, SCHEMA, "consumer-a", rolledBack);
      throw new Error("handler failed");
    }),
  );
  t.true(await pool.transaction((tx) => claimEvent(tx, SCHEMA, "consumer-a", rolledBack)), "a failed handling can be retried");
});
