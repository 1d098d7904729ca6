import { createNumericTypeParser, createPool, SchemaValidationError, type DatabasePool, type Interceptor, type QueryResultRow } from "slonik";
import { gauge } from "@controlplane/metrics";
import { redactUrl } from "@controlplane/log";
import { tracingEnabled } from "@controlplane/tracing";
import { installRowTemplateCache } from "./pg-rows.js";
import { installPreparedStatements, setPreparedStatements } from "./prepared.js";
import { safeParseRow } from "./row-parser.js";
import { sql } from "./sql.js";
import { queryTracing } from "./tracing.js";

export type { DatabasePool };

/**
 * Validates every row of a `sql.type(schema)` query against its zod schema
 * (slonik does not do it by itself) and returns the parsed row, so coercions
 * and defaults in the schema apply. Plain schemas take a compiled check
 * instead of zod's parse (see row-parser.ts): same result, a fraction of
 * the CPU.
 */
const resultParser: Interceptor = {
  name: "zod-result-parser",
  transformRow: (context, query, row) => {
    const parser = context.resultParser;
    if (!parser) return row;
    const parsed = safeParseRow(parser, row);
    if (!parsed.success) throw new SchemaValidationError(query, row, parsed.error.issues);
    return parsed.data as QueryResultRow;
  },
};

/** Timestamps as Date objects (slonik's default is epoch milliseconds). */
const toDate = (value: string) => new Date(value);

const pools = new Map<string, DatabasePool>();

gauge({
  name: "db_pool_connections",
  help: "Connections of the database pool by state.",
  labelNames: ["pool", "state"] as const,
  collect() {
    for (const [name, pool] of pools) {
      const state = pool.state();
      this.set({ pool: name, state: "acquired" }, state.acquiredConnections);
      this.set({ pool: name, state: "idle" }, state.idleConnections);
      this.set({ pool: name, state: "pending" }, state.pendingConnections);
    }
  },
});

/**
 * Opens the pool of one service and checks the server answers, so an
 * unreachable database fails start-up with one line naming the URL. With
 * tracing on (started before), each query made inside a trace gets a span.
 */
export async function createDbPool(url: string, options: { name: string; maxSize?: number; preparedStatements?: boolean }): Promise<DatabasePool> {
  installRowTemplateCache();
  setPreparedStatements(options.preparedStatements ?? true);
  installPreparedStatements();
  const pool = await createPool(url, {
    maximumPoolSize: options.maxSize ?? 10,
    connectionTimeout: 5_000,
    statementTimeout: 30_000,
    idleInTransactionSessionTimeout: 60_000,
    // Connections are reused as they are: no service sets session state, and
    // slonik's default DISCARD ALL on every release doubles the statements
    // and throws away every cached plan (plpgsql functions included).
    resetConnection: async () => undefined,
    idleTimeout: 60_000,
    // Decided once, at creation: a pool opened with tracing off pays nothing per query.
    interceptors: tracingEnabled() ? [resultParser, queryTracing(options.name)] : [resultParser],
    typeParsers: [
      // Counts and token totals: numbers, exact below 2^53 (far beyond any count here).
      { name: "int8", parse: (value: string) => Number(value) },
      createNumericTypeParser(),
      { name: "timestamptz", parse: toDate },
      { name: "timestamp", parse: toDate },
    ],
  });
  try {
    await pool.query(sql.unsafe`SELECT 1`);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new Error(`cannot reach Postgres at ${redactUrl(url)}: ${(error as Error).message}`, { cause: error });
  }
  pools.set(options.name, pool);
  const end = pool.end.bind(pool);
  return Object.assign(pool, {
    end: async () => {
      pools.delete(options.name);
      await end();
    },
  });
}
