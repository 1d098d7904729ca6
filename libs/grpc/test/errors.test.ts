import { createServer, Socket, type AddressInfo } from "node:net";
import test from "ava";
import { createPool, sql } from "slonik";
import { INTERNAL_MESSAGE, NotFoundError, status, toServiceError, UNAVAILABLE_MESSAGE } from "@controlplane/grpc";
import { waitFor } from "@controlplane/testkit";

const SERVER_URL = process.env.TEST_DATABASE_SERVER_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

// Shapes of "the database (or NATS) cannot be reached right now", as the
// drivers produce them, and what each must be answered with.

/** slonik 47 errors keep `name` "Error": only the class name tells them apart. */
class ConnectionError extends Error {}
class BackendTerminatedError extends Error {}
class BackendTerminatedUnexpectedlyError extends Error {}

function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 10.0.0.7:5432`), { code, syscall: "connect", address: "10.0.0.7", port: 5432 });
}

const unavailable = { code: status.UNAVAILABLE, details: UNAVAILABLE_MESSAGE };
const internal = { code: status.INTERNAL, details: INTERNAL_MESSAGE };

const cases: Array<[string, unknown, typeof unavailable]> = [
  ["slonik ConnectionError (by class name)", new ConnectionError("connect ECONNREFUSED 127.0.0.1:5432"), unavailable],
  ["slonik BackendTerminatedError (by class name)", new BackendTerminatedError("Backend has been terminated."), unavailable],
  ["slonik BackendTerminatedUnexpectedlyError", new BackendTerminatedUnexpectedlyError("Backend has been terminated unexpectedly."), unavailable],
  ["an error named ConnectionError (NATS)", Object.assign(new Error("connection refused"), { name: "ConnectionError" }), unavailable],
  ["a wrapped slonik ConnectionError", new Error("loading runtime failed", { cause: new ConnectionError("pool") }), unavailable],
  ["SQLSTATE 08006 connection failure", withCode("connection failure", "08006"), unavailable],
  ["SQLSTATE 08001 cannot establish connection", withCode("could not connect", "08001"), unavailable],
  ["SQLSTATE 57P01 admin shutdown", withCode("terminating connection due to administrator command", "57P01"), unavailable],
  ["SQLSTATE 57P02 crash shutdown", withCode("terminating connection due to crash of another server process", "57P02"), unavailable],
  ["SQLSTATE 57P03 cannot connect now", withCode("the database system is starting up", "57P03"), unavailable],
  ["ECONNREFUSED deep in the cause chain", new Error("a", { cause: new Error("b", { cause: socketError("ECONNREFUSED") }) }), unavailable],
  ["ECONNRESET as a cause", new Error("query failed", { cause: socketError("ECONNRESET") }), unavailable],
  ["ETIMEDOUT as a cause", new Error("query failed", { cause: socketError("ETIMEDOUT") }), unavailable],
  ["a dual-stack connect refused on every address", new AggregateError([socketError("ECONNREFUSED"), socketError("ECONNREFUSED")]), unavailable],
  ["a unique violation (23505)", withCode("duplicate key value", "23505"), internal],
  ["a statement timeout (57014)", withCode("canceling statement due to statement timeout", "57014"), internal],
  ["an error whose message merely mentions ECONNREFUSED", new Error("ECONNREFUSED"), internal],
  ["an unknown error", new Error("relation profiles.secret does not exist"), internal],
  ["a thrown string", "boom", internal],
];

for (const [name, error, expected] of cases) {
  test(`${name} is answered ${status[expected.code]}`, (t) => {
    t.like(toServiceError(error), expected);
  });
}

test("the answer to an unreachable dependency carries none of its internals", (t) => {
  const mapped = toServiceError(new Error("SELECT * FROM secret", { cause: socketError("ECONNREFUSED") }));
  t.is(mapped.details, UNAVAILABLE_MESSAGE);
  t.notRegex(mapped.details, /10\.0\.0\.7|5432|SELECT|ECONNREFUSED/);
});

test("a cause chain that loops back on itself is walked once", (t) => {
  const a = new Error("a");
  const b = new Error("b", { cause: a });
  (a as Error & { cause?: unknown }).cause = b;
  t.like(toServiceError(a), internal);
});

test("domain errors keep their code even when they wrap a connection error", (t) => {
  const error = Object.assign(new NotFoundError("runtime not found"), { cause: socketError("ECONNREFUSED") });
  t.like(toServiceError(error), { code: status.NOT_FOUND, details: "runtime not found" });
});

/** A TCP forwarder to Postgres, so a pool can be created and then find nothing listening. */
async function forwardToPostgres(): Promise<{ port: number; close(): Promise<void> }> {
  const target = new URL(SERVER_URL);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = new Socket().connect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => socket.destroy());
      socket.on("close", () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

test("a real slonik query against a port where nothing listens is answered UNAVAILABLE", async (t) => {
  // slonik connects once while creating a pool, so the pool is created through
  // a forwarder that then goes away: every later connection is refused.
  const forwarder = await forwardToPostgres();
  const pool = await createPool(`postgres://postgres@127.0.0.1:${forwarder.port}/postgres`, { connectionTimeout: 2_000 });
  t.teardown(() => pool.end());
  await forwarder.close();
  const error = await t.throwsAsync(pool.query(sql.unsafe`SELECT 1`));
  t.like(toServiceError(error), unavailable);
});

test("a real query whose backend an administrator terminated is answered UNAVAILABLE", async (t) => {
  const pool = await createPool(SERVER_URL, { maximumPoolSize: 1 });
  const admin = await createPool(SERVER_URL, { maximumPoolSize: 1 });
  t.teardown(async () => {
    await pool.end();
    await admin.end();
  });
  // One connection: the sleep runs on the backend whose pid we read first.
  const pid = await pool.oneFirst(sql.unsafe`SELECT pg_backend_pid()`);
  const sleeping = pool.query(sql.unsafe`SELECT pg_sleep(30)`);
  await waitFor("the sleep to be running", async () =>
    admin.exists(sql.unsafe`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid as number} AND state = 'active'`),
  );
  await admin.query(sql.unsafe`SELECT pg_terminate_backend(${pid as number})`);
  const error = await t.throwsAsync(sleeping);
  t.like(toServiceError(error), unavailable);
});
