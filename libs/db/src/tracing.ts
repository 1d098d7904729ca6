import type { Interceptor } from "slonik";
import { activeTracer, context, hasParent, markFailed, SpanKind, type Span } from "@controlplane/tracing";

/** Longest span name taken from a statement. */
const MAX_NAME_CHARS = 80;
/** A first line shorter than this (`SELECT`) is followed by the next ones. */
const MIN_NAME_CHARS = 24;
/** Where the query's span waits, in slonik's per-query sandbox. */
const SPAN = "tracing.span";

/**
 * A CLIENT span per query, named by the statement's first line (parameters
 * are always bound, so no value appears in it; no parameter is recorded).
 * Only inside a trace: the relay's polls, sweeps and flushes that no request
 * started stay out, so a quiet process exports nothing.
 */
export function queryTracing(poolName: string): Interceptor {
  return {
    name: "tracing",
    beforeQueryExecution: (queryContext, query) => {
      const tracer = activeTracer();
      if (!tracer || !hasParent()) return null;
      const summary = statementSummary(query.sql);
      queryContext.sandbox[SPAN] = tracer.startSpan(
        summary,
        {
          kind: SpanKind.CLIENT,
          attributes: { "db.system.name": "postgresql", "db.query.summary": summary, "db.client.connection.pool.name": poolName },
        },
        context.active(),
      );
      return null;
    },
    afterQueryExecution: (queryContext, _query, result) => {
      const span = spanOf(queryContext.sandbox);
      if (span) {
        span.setAttribute("db.response.returned_rows", result.rowCount ?? 0);
        span.end();
      }
      return null;
    },
    queryExecutionError: (queryContext, _query, error) => {
      const span = spanOf(queryContext.sandbox);
      if (span) {
        // The SQLSTATE and the error's class; never its message, which may quote values.
        const code = (error as { cause?: { code?: unknown } }).cause?.code;
        if (typeof code === "string") span.setAttribute("db.response.status_code", code);
        markFailed(span, error.name);
        span.end();
      }
      return null;
    },
  };
}

function spanOf(sandbox: Record<string, unknown>): Span | undefined {
  return sandbox[SPAN] as Span | undefined;
}

/**
 * A statement's name for its span: its first line (`INSERT INTO "registry"."outbox" (id, ...)`),
 * with the next lines added while that is too short to say anything (a bare
 * `SELECT` or `WITH moved AS (`), spaces squeezed, cut at 80 characters.
 * Parameters are always bound, so no value can appear in it.
 */
export function statementSummary(statement: string): string {
  let summary = "";
  for (const line of statement.split("\n")) {
    const squeezed = line.trim().replace(/\s+/g, " ");
    if (squeezed.length === 0) continue;
    summary = summary ? `${summary} ${squeezed}` : squeezed;
    if (summary.length >= MIN_NAME_CHARS) break;
  }
  if (summary.length === 0) return "query";
  return summary.length > MAX_NAME_CHARS ? `${summary.slice(0, MAX_NAME_CHARS - 1)}…` : summary;
}
