import pg from "pg";

/**
 * Named (prepared) statements for the statements a service runs again and
 * again. slonik sends each query as pg's unnamed statement, so Postgres
 * parses, analyses and plans it anew on every run; for the task cycle's
 * statements (the claim function's call, the start and the completion with
 * its events) that was about half of Postgres' CPU per cycle. A statement
 * text seen `PREPARE_AFTER` times in this process gets a name; each
 * connection then parses it once and reuses it (Postgres re-plans it by
 * itself when a table it reads changes).
 *
 * Bounded: at most MAX_NAMED texts per process, none longer than
 * MAX_TEXT_CHARS (texts that embed a varying number of values are distinct
 * texts, and stay unnamed once the bound is reached), so a backend holds a
 * few hundred statements at worst.
 *
 * One hazard: after a migration changes the columns a statement returns
 * (`SELECT *`), Postgres refuses the stale statement ("cached plan must not
 * change result type"). The text then gets a fresh name, so every
 * connection prepares it again; the statement that met the error is re-run
 * unnamed when it ran on its own, and fails once (its transaction is
 * already aborted) when it ran inside a transaction.
 *
 * Off with DB_PREPARED_STATEMENTS=false, for poolers that do not keep named
 * statements across transactions (PgBouncer in transaction mode before
 * 1.21, or without max_prepared_statements).
 */
export function installPreparedStatements(): void {
  if (installed) return;
  installed = true;
  const prototype = pg.Client.prototype as unknown as PgClientLike;
  const query = prototype.query;
  prototype.query = function queryPreparedWhenRepeated(this: PgClientLike, config: unknown, values?: unknown, callback?: unknown) {
    // Only the form slonik uses (text and values, promise result): every other form is pg's own.
    if (!enabled || typeof config !== "string" || !Array.isArray(values) || callback !== undefined) {
      return query.call(this, config, values, callback);
    }
    const name = nameFor(config);
    if (name === undefined) return query.call(this, config, values);
    const ranAlone = this.getTransactionStatus?.() === "I";
    const answer = query.call(this, { name, text: config, values }) as Promise<unknown>;
    return answer.catch((error: unknown) => {
      if (!isStalePlan(error)) throw error;
      rename(config, name);
      if (ranAlone) return query.call(this, config, values);
      throw error;
    });
  };
}

/**
 * Whether repeated statements get names, for every pool of the process (pg
 * clients do not say which pool they belong to): the last pool opened sets
 * it. The services of one process share one environment, so they agree.
 */
export function setPreparedStatements(on: boolean): void {
  enabled = on;
}

/** Runs a statement unnamed this many times before naming it: one-off statements never take a name. */
const PREPARE_AFTER = 3;
const MAX_NAMED = 256;
const MAX_TEXT_CHARS = 16 * 1024;

let installed = false;
let enabled = true;
let generation = 0;
const named = new Map<string, string>();
const seen = new Map<string, number>();

interface PgClientLike {
  query(config: unknown, values?: unknown, callback?: unknown): unknown;
  getTransactionStatus?(): string | null;
}

function nameFor(text: string): string | undefined {
  const name = named.get(text);
  if (name !== undefined || named.size >= MAX_NAMED || text.length > MAX_TEXT_CHARS) return name;
  const count = (seen.get(text) ?? 0) + 1;
  if (count < PREPARE_AFTER) {
    // Counts only as many texts as could still be named: ad-hoc statements must not grow it without end.
    if (seen.size >= MAX_NAMED * 4) seen.clear();
    seen.set(text, count);
    return undefined;
  }
  seen.delete(text);
  const fresh = `cp_${++generation}`;
  named.set(text, fresh);
  return fresh;
}

/** A new name for a text whose statement went stale: connections prepare it afresh, the old one is never used again. */
function rename(text: string, stale: string): void {
  if (named.get(text) === stale) named.set(text, `cp_${++generation}`);
}

/** Postgres' answer to a named statement whose result columns changed since it was prepared. */
function isStalePlan(error: unknown): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === "0A000" && typeof message === "string" && message.includes("cached plan must not change result type");
}
