import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import test from "ava";
import {
  createDbPool,
  EventTooLargeError,
  MAX_EVENT_BYTES,
  migrate,
  Outbox,
  publishedSize,
  requeueParked,
  sql,
  type DatabasePool,
  type OutboxRelayOptions,
} from "@controlplane/db";
import { closeEventBus, connectEventBus, encodeEvent, EventMeta, type EventBus, type EventType } from "@controlplane/events";
import { createLogger } from "@controlplane/log";
import { registry } from "@controlplane/metrics";
import { headers } from "@nats-io/transport-node";
import { createTestDatabase, createTestEvents, NATS_URL, query, waitFor, type TestDatabase, type TestEvents } from "@controlplane/testkit";

const SCHEMA = "kit_test";
const FIXTURES = fileURLToPath(new URL("fixtures/migrations", import.meta.url));
const log = createLogger("test", "silent");
let db: TestDatabase;
let events: TestEvents;
let pool: DatabasePool;
let bus: EventBus;
let outbox: Outbox;

test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
  await migrate({ databaseUrl: db.url, schema: SCHEMA, dir: FIXTURES, log });
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
  const bytes = Buffer.from(encodeEvent("profile.created", { ...body, meta: EventMeta.fromPartial({ eventId, workspaceId: randomUUID() }) }));
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

test("the kit's migrations leave no inbox: handlers are idempotent by their own writes", async (t) => {
  t.is(await pool.oneFirst(sql.unsafe`SELECT to_regclass(${`${SCHEMA}.inbox`})::text AS inbox`), null);
  t.is(await pool.oneFirst(sql.unsafe`SELECT to_regclass(${`${SCHEMA}.outbox`})::text AS outbox`), `${SCHEMA}.outbox`);
});

test.serial("writeMany refuses an event over MAX_EVENT_BYTES and its transaction writes nothing", async (t) => {
  const oversized = profileBody("x".repeat(MAX_EVENT_BYTES));
  const error = await t.throwsAsync(
    outbox.transaction(async (tx) => {
      await tx.query(sql.unsafe`INSERT INTO kit_test.thing (id, name) VALUES (${randomUUID()}, 'beside an oversized event')`);
      await outbox.write(tx, "profile.created", profileBody("before an oversized event"), { workspaceId: randomUUID() });
      await outbox.writeMany(tx, [
        { type: "profile.created", body: profileBody("next to an oversized event"), meta: { workspaceId: randomUUID() } },
        { type: "profile.created", body: oversized, meta: { workspaceId: randomUUID() } },
      ]);
    }),
    { instanceOf: EventTooLargeError },
  );
  t.regex(error!.message, /profile\.created/);
  t.true(error!.size > MAX_EVENT_BYTES);
  t.regex(error!.message, new RegExp(String(error!.size)));
  await outbox.transaction((tx) => outbox.write(tx, "profile.created", profileBody("after the refusal"), { workspaceId: randomUUID() }));
  await waitFor("the marker after the refusal", async () => (await publishedNames()).includes("after the refusal"));
  const names = await publishedNames();
  t.false(names.some((n) => n.includes("oversized") || n.startsWith("xxx")));
  t.deepEqual(await query(db.url, "SELECT name FROM kit_test.thing WHERE name = 'beside an oversized event'"), []);
});

// The relays below each get a schema, a pool and a stream of their own, and
// faster pacing than production; every wait is derived from that pacing.
const RELAY: OutboxRelayOptions = { batchSize: 4, pollIntervalMs: 50, retryDelayMs: 500, publishTimeoutMs: 1_000, lagIntervalMs: 50, minPassIntervalMs: 20 };
/** The longest one relay pass can take: its pacing, a publish timing out, the back-off, a lag measurement. */
const PASS_MS = RELAY.minPassIntervalMs + RELAY.publishTimeoutMs + RELAY.retryDelayMs + RELAY.lagIntervalMs;
/** Long enough for several passes; a healthy relay finishes in one. */
const SETTLE = { timeoutMs: 10 * PASS_MS };
/**
 * JetStream's smallest duplicate window (nats-server refuses less). Well under
 * the retry delay, so an event the relay published again on a retry would be
 * stored twice instead of silently dropped, as it would be after the
 * production window of two minutes.
 */
const DUPLICATE_WINDOW_MS = 100;

interface OwnRelay {
  schema: string;
  pool: DatabasePool;
  bus: EventBus;
  events: TestEvents;
  outbox: Outbox;
}

async function startOwnRelay(t: { teardown(fn: () => Promise<void>): void }, schema: string): Promise<OwnRelay> {
  await migrate({ databaseUrl: db.url, schema, dir: FIXTURES, log });
  const ownPool = await createDbPool(db.url, { name: `kit-test-${schema}`, maxSize: 2 });
  const ownEvents = await createTestEvents();
  const ownBus = await connectEventBus({ url: NATS_URL, name: schema, stream: ownEvents.stream, subjectRoot: ownEvents.subjectRoot });
  await ownBus.jsm.streams.update(ownEvents.stream, { duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000 });
  const relay = new Outbox(ownPool, schema, ownBus, log, RELAY);
  t.teardown(async () => {
    await relay.stop();
    await closeEventBus(ownBus);
    await ownPool.end();
    await ownEvents.close();
  });
  return { schema, pool: ownPool, bus: ownBus, events: ownEvents, outbox: relay };
}

/** Lets only `subjects` (under the relay's root) into its stream, so the rest fails with "no responders". */
async function coverOnly(relay: OwnRelay, subjects: string[]): Promise<void> {
  await relay.bus.jsm.streams.update(relay.events.stream, { subjects: subjects.map((s) => `${relay.events.subjectRoot}.${s}`) });
}

/** A metric's current value for one schema, from the process registry the outbox reports to. */
async function metric(name: string, schema: string): Promise<number | undefined> {
  const found = registry.getSingleMetric(name);
  if (!found) return undefined;
  return (await found.get()).values.find((v) => v.labels.schema === schema)?.value;
}

async function outboxIds(schema: string): Promise<string[]> {
  return (await query<{ id: string }>(db.url, `SELECT id FROM ${schema}.outbox ORDER BY created_at, id`)).map((r) => r.id);
}

/** How many times each message id is stored in the relay's stream, over `types`. */
async function storedCounts(relay: OwnRelay, types: EventType[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const type of types) {
    for (const { msgId } of await relay.events.read(type)) counts.set(msgId!, (counts.get(msgId!) ?? 0) + 1);
  }
  return counts;
}

function pending(type: "profile.created" | "profile.updated", name: string) {
  return { type, body: profileBody(name), meta: { workspaceId: randomUUID() } };
}

test("an event over the server's max_payload is parked and counted; the events behind it flow, each published once", async (t) => {
  const relay = await startOwnRelay(t, "kit_park");
  const maxPayload = relay.bus.nc.info!.max_payload;
  const parkedBefore = (await metric("outbox_parked_total", relay.schema)) ?? 0;
  const oversizedId = randomUUID();
  // One transaction, so the oversized row shares its batch with the first
  // events and the rest come in later batches.
  const ids = await relay.outbox.transaction(async (tx) => {
    const [first] = await relay.outbox.writeMany(tx, [pending("profile.created", "before oversized")]);
    await tx.query(sql.unsafe`
      INSERT INTO kit_park.outbox (id, event_type, payload) VALUES (${oversizedId}, 'profile.created', ${sql.binary(Buffer.alloc(maxPayload))})`);
    const rest = await relay.outbox.writeMany(
      tx,
      Array.from({ length: 2 * RELAY.batchSize }, (_, i) => pending("profile.created", `after oversized ${i}`)),
    );
    return [first!, ...rest];
  });
  relay.outbox.start();

  await waitFor("the outbox to drain", async () => (await outboxIds(relay.schema)).length === 0, SETTLE);
  const parked = await query<{ id: string; event_type: string; size: number; reason: string }>(
    db.url,
    "SELECT id, event_type, length(payload) AS size, reason FROM kit_park.outbox_parked",
  );
  t.deepEqual(
    parked.map(({ id, event_type, size }) => ({ id, event_type, size })),
    [{ id: oversizedId, event_type: "profile.created", size: maxPayload }],
  );
  t.regex(parked[0]!.reason, /max_payload/);
  t.is(await metric("outbox_parked_total", relay.schema), parkedBefore + 1);
  await waitFor("the parked gauge", async () => (await metric("outbox_parked", relay.schema)) === 1, SETTLE);
  // Parked rows are not lag: nothing is waiting in the outbox itself.
  await waitFor("the lag to be 0", async () => (await metric("outbox_lag_seconds", relay.schema)) === 0, SETTLE);

  // The relay keeps flowing after parking, without a failed pass.
  const failuresBefore = (await metric("outbox_relay_failures_total", relay.schema)) ?? 0;
  await relay.outbox.transaction((tx) => relay.outbox.writeMany(tx, [pending("profile.created", "written after parking")]));
  await waitFor("the event written after parking to be published", async () => (await outboxIds(relay.schema)).length === 0, SETTLE);
  const stored = await storedCounts(relay, ["profile.created"]);
  t.false(stored.has(oversizedId));
  t.deepEqual(
    ids.map((id) => stored.get(id)),
    ids.map(() => 1),
  );
  t.is(stored.size, ids.length + 1);
  t.is((await metric("outbox_relay_failures_total", relay.schema)) ?? 0, failuresBefore);
});

test("a transient publish failure leaves only the failed row in the outbox; after recovery every event is stored once", async (t) => {
  const relay = await startOwnRelay(t, "kit_transient");
  await coverOnly(relay, ["profile.created"]);
  const failuresBefore = (await metric("outbox_relay_failures_total", relay.schema)) ?? 0;
  const ids = await relay.outbox.transaction((tx) =>
    relay.outbox.writeMany(tx, [
      pending("profile.created", "transient 1"),
      pending("profile.updated", "transient stuck"),
      pending("profile.created", "transient 2"),
    ]),
  );
  relay.outbox.start();

  // Several failed passes, each longer than the stream's duplicate window:
  // batch-mates published again on a retry would show up twice below.
  await waitFor("three failed relay passes", async () => ((await metric("outbox_relay_failures_total", relay.schema)) ?? 0) >= failuresBefore + 3, SETTLE);
  t.deepEqual(await outboxIds(relay.schema), [ids[1]!], "only the row that failed stays");

  await coverOnly(relay, [">"]);
  await waitFor("the outbox to drain after recovery", async () => (await outboxIds(relay.schema)).length === 0, SETTLE);
  const stored = await storedCounts(relay, ["profile.created", "profile.updated"]);
  t.deepEqual(Object.fromEntries(stored), Object.fromEntries(ids.map((id) => [id, 1])));
  t.deepEqual(await query(db.url, "SELECT id FROM kit_transient.outbox_parked"), [], "a transient failure is not parked");
});

test("outbox_lag_seconds rises while the head of the outbox cannot be published, and falls to 0 once it is", async (t) => {
  const relay = await startOwnRelay(t, "kit_lag");
  await coverOnly(relay, ["profile.created"]);
  await relay.outbox.transaction((tx) => relay.outbox.writeMany(tx, [pending("profile.updated", "stuck head")]));
  relay.outbox.start();

  const first = await waitFor(
    "a lag above 0",
    async () => {
      const lag = await metric("outbox_lag_seconds", relay.schema);
      return lag !== undefined && lag > 0 ? lag : undefined;
    },
    SETTLE,
  );
  await waitFor("the lag to keep growing", async () => ((await metric("outbox_lag_seconds", relay.schema)) ?? 0) > first, SETTLE);

  await coverOnly(relay, [">"]);
  await waitFor("the lag back to 0", async () => (await metric("outbox_lag_seconds", relay.schema)) === 0, SETTLE);
  t.deepEqual(await outboxIds(relay.schema), []);
});

test("requeueParked moves a parked event back to the outbox and the relay publishes it", async (t) => {
  const relay = await startOwnRelay(t, "kit_requeue");
  relay.outbox.start();
  const eventId = randomUUID();
  const bytes = Buffer.from(
    encodeEvent("profile.created", { ...profileBody("requeued"), meta: EventMeta.fromPartial({ eventId, workspaceId: randomUUID() }) }),
  );
  await relay.pool.query(sql.unsafe`
    INSERT INTO kit_requeue.outbox_parked (id, event_type, payload, created_at, reason)
    VALUES (${eventId}, 'profile.created', ${sql.binary(bytes)}, now(), 'parked by the test')`);

  t.deepEqual(await requeueParked(relay.pool, relay.schema, [eventId, randomUUID()]), [eventId]);
  relay.outbox.kick();
  const [published] = await waitFor(
    "the requeued event in the stream",
    async () => {
      const all = await relay.events.read("profile.created");
      return all.length > 0 ? all : undefined;
    },
    SETTLE,
  );
  t.is(published!.msgId, eventId);
  t.is(published!.event.profile!.displayName, "requeued");
  t.deepEqual(await query(db.url, "SELECT id FROM kit_requeue.outbox_parked"), []);
});

test("an event the stream refuses for good (over its max_msg_size) is parked; its batch-mates are published", async (t) => {
  const relay = await startOwnRelay(t, "kit_refused");
  const maxMsgSize = 1024;
  await relay.bus.jsm.streams.update(relay.events.stream, { max_msg_size: maxMsgSize });
  const ids = await relay.outbox.transaction((tx) =>
    relay.outbox.writeMany(tx, [
      pending("profile.created", "small before"),
      pending("profile.created", "y".repeat(2 * maxMsgSize)),
      pending("profile.created", "small after"),
    ]),
  );
  relay.outbox.start();

  await waitFor("the outbox to drain", async () => (await outboxIds(relay.schema)).length === 0, SETTLE);
  const parked = await query<{ id: string; reason: string }>(db.url, "SELECT id, reason FROM kit_refused.outbox_parked");
  t.deepEqual(
    parked.map((p) => p.id),
    [ids[1]],
  );
  t.regex(parked[0]!.reason, /message size exceeds maximum/);
  const stored = await storedCounts(relay, ["profile.created"]);
  t.deepEqual(Object.fromEntries(stored), { [ids[0]!]: 1, [ids[2]!]: 1 });
});

test("the relay's size check is the bound the NATS client enforces, message-id header included", (t) => {
  const id = randomUUID();
  const msgId = headers();
  msgId.set("Nats-Msg-Id", id);
  const largestPayload = events.nc.info!.max_payload - publishedSize(0, id);
  // A subject no stream captures: only the client's and server's size checks apply.
  const subject = `size-probe.${randomUUID()}`;
  t.notThrows(() => events.nc.publish(subject, new Uint8Array(largestPayload), { headers: msgId }));
  t.throws(() => events.nc.publish(subject, new Uint8Array(largestPayload + 1), { headers: msgId }), { message: /max_payload/ });
});

test("events written back to back while the relay is paced go out in one pass", async (t) => {
  const schema = "kit_paced";
  await migrate({ databaseUrl: db.url, schema, dir: FIXTURES, log });
  const relayPool = await createDbPool(db.url, { name: `kit-test-${schema}`, maxSize: 2 });
  let passes = 0;
  // Every relay pass is one transaction on the relay's own pool; writers use another.
  const counted = new Proxy(relayPool, {
    get(target, key, receiver) {
      if (key === "transaction") passes++;
      const value = Reflect.get(target, key, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  // Only kicks start a pass (no poll within the test); a pass starts at most every PACE_MS.
  const PACE_MS = 2_000;
  const options = { ...RELAY, batchSize: 256, pollIntervalMs: 600_000, minPassIntervalMs: PACE_MS };
  const relay = new Outbox(counted, schema, bus, log, options);
  t.teardown(async () => {
    await relay.stop();
    await relayPool.end();
  });
  relay.start();
  const write = async (name: string) => {
    const [id] = await pool.transaction((tx) => relay.writeMany(tx, [pending("profile.created", name)]));
    relay.kick();
    return id!;
  };
  const drained = () => waitFor("the outbox to drain", async () => (await outboxIds(schema)).length === 0, SETTLE);

  // From the first write: its pass starts the pacing interval the five fall into.
  const started = Date.now();
  await write("paced-first");
  await drained();
  const before = passes;
  for (let i = 0; i < 5; i++) await write(`paced-${i}`);
  const writingMs = Date.now() - started;
  await drained();
  // Written within the pacing interval the first event's pass opened (the usual
  // case) they share one pass; a machine slow enough to spread the writes over
  // k intervals allows k + 1.
  const allowed = 1 + Math.floor(writingMs / PACE_MS);
  t.true(passes - before >= 1);
  t.true(passes - before <= allowed, `${passes - before} passes for five events written in ${writingMs} ms (at most ${allowed})`);
});

test("an idle relay's poll is one statement and no transaction; a row no write kicked is still found and published", async (t) => {
  const schema = "kit_idle_poll";
  await migrate({ databaseUrl: db.url, schema, dir: FIXTURES, log });
  const relayPool = await createDbPool(db.url, { name: `kit-test-${schema}`, maxSize: 2 });
  const calls = { transaction: 0, one: 0 };
  // The relay's statements go through its own pool; the writer uses another.
  const counted = new Proxy(relayPool, {
    get(target, key, receiver) {
      if (key === "transaction" || key === "one") calls[key]++;
      const value = Reflect.get(target, key, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const relay = new Outbox(counted, schema, bus, log, RELAY);
  t.teardown(async () => {
    await relay.stop();
    await relayPool.end();
  });
  relay.start();
  await waitFor("ten polls", async () => calls.one >= 10, SETTLE);
  t.is(calls.transaction, 0, "no poll found a row, so none took a transaction");

  // Committed without a kick reaching this relay (as by another replica that crashed): the next poll finds it.
  const name = `unkicked-${randomUUID().slice(0, 8)}`;
  await pool.transaction((tx) => relay.writeMany(tx, [pending("profile.created", name)]));
  await waitFor("the poll to publish it", async () => (await publishedNames()).includes(name), SETTLE);
  t.true(calls.transaction >= 1, "the poll that found it relayed it in a transaction");
  t.deepEqual(await outboxIds(schema), []);
});
