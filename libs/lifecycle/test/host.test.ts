import { fileURLToPath } from "node:url";
import test from "ava";
import { openServiceHost } from "@controlplane/lifecycle";
import { createLogger } from "@controlplane/log";
import { createTestDatabase, createTestEvents, query, type TestDatabase, type TestEvents } from "@controlplane/testkit";

const log = createLogger("test", "silent");
const MIGRATIONS = fileURLToPath(new URL("../../db/test/fixtures/migrations", import.meta.url));

let db: TestDatabase;
let events: TestEvents;
test.before(async () => {
  db = await createTestDatabase();
  events = await createTestEvents();
});
test.after.always(async () => {
  await events?.close();
  await db?.drop();
});

const hostConfig = (migrateOnStart: boolean) => ({
  DATABASE_URL: db.url,
  NATS_URL: "nats://127.0.0.1:4222",
  EVENTS_STREAM: events.stream,
  EVENTS_SUBJECT_ROOT: events.subjectRoot,
  DB_POOL_SIZE: 2,
  MIGRATE_ON_START: migrateOnStart,
});

const thingTable = async (schema: string) =>
  (await query<{ table: string | null }>(db.url, "SELECT to_regclass($1)::text AS table", [`${schema}.thing`]))[0]!.table;

test.serial("a host started with MIGRATE_ON_START=false leaves the schema alone; the default migrates it", async (t) => {
  const quiet = await openServiceHost({ name: "quiet", schema: "hostquiet", migrationsDir: MIGRATIONS, config: hostConfig(false), log });
  await quiet.stop();
  t.is(await thingTable("hostquiet"), null, "no DDL from a host told not to migrate");
  const migrating = await openServiceHost({ name: "migrating", schema: "hostquiet", migrationsDir: MIGRATIONS, config: hostConfig(true), log });
  await migrating.stop();
  t.is(await thingTable("hostquiet"), "hostquiet.thing");
});
