import type { DatabasePool, DatabaseTransactionConnection, FragmentSqlToken as SqlFragment } from "slonik";
import { z } from "zod";
import { subjectFor, traceparentHeaders, type EventBody, type EventBus, type EventType } from "@controlplane/events";
import type { Logger } from "@controlplane/log";
import { encodeEvents, startCreateSpans, type EventMetaInput, type PendingEvent } from "./outbox-encode.js";
import { measureOutbox } from "./outbox-lag.js";
import { failures, parkedTotal, published } from "./outbox-metrics.js";
import { DEFAULT_MAX_PAYLOAD_BYTES, isPermanentPublishError, publishedSize } from "./outbox-publish.js";
import { sql } from "./sql.js";

/** Relay pacing; each field is a default a test (or a caller) may override. */
export interface OutboxRelayOptions {
  /** Events taken per transaction. */
  batchSize: number;
  /** Fallback poll for rows committed by other replicas or left by a crash. */
  pollIntervalMs: number;
  /** Wait before retrying after events failed to publish (kicks do not shorten it). */
  retryDelayMs: number;
  /** How long one publish waits for JetStream's ack. */
  publishTimeoutMs: number;
  /** Minimum time between two lag measurements: a gauge, not worth a query per batch. */
  lagIntervalMs: number;
  /**
   * Minimum time between the starts of two relay passes. A pass costs four
   * statements however many events it takes: under a steady stream of
   * writes, events wait up to this long so a pass takes them together
   * instead of one pass per event. An event written after a quiet spell
   * goes out at once.
   */
  minPassIntervalMs: number;
}

export const OUTBOX_RELAY_DEFAULTS: Readonly<OutboxRelayOptions> = Object.freeze({
  batchSize: 256,
  pollIntervalMs: 1_000,
  retryDelayMs: 1_000,
  publishTimeoutMs: 5_000,
  lagIntervalMs: 1_000,
  minPassIntervalMs: 20,
});

const outboxRow = z.object({
  id: z.string(),
  event_type: z.string(),
  payload: z.instanceof(Buffer),
  created_at: z.date(),
  /** The writer's trace context, published as the `traceparent` header. */
  traceparent: z.string().nullable(),
});
type OutboxRow = z.infer<typeof outboxRow>;

/** What became of one row in a relay pass. */
type RowOutcome =
  | { kind: "published"; row: OutboxRow }
  | { kind: "parked"; row: OutboxRow; reason: string }
  | { kind: "failed"; row: OutboxRow; error: unknown };

type ParkedRow = Extract<RowOutcome, { kind: "parked" }>;

/** A committed relay transaction. */
interface BatchResult {
  taken: number;
  published: number;
  parked: ParkedRow[];
  /** Transient publish errors; their rows stay in the outbox for the next pass. */
  failed: unknown[];
}

/**
 * The transactional outbox of one service schema. `write` records an event in
 * the caller's transaction; the relay publishes committed events to JetStream
 * with the event id as message id (so a re-publish after a crash is dropped
 * by the stream) and deletes them. A NATS outage delays events, never loses
 * them; an event that can never be published is parked in `outbox_parked`
 * (and counted) instead of holding back the events behind it.
 */
export class Outbox {
  private readonly table;
  private readonly parkedTable;
  private readonly options: Readonly<OutboxRelayOptions>;
  /** Transactions that wrote an event: only those wake the relay. */
  private readonly written = new WeakSet<object>();
  private wake: (() => void) | undefined;
  private pendingKick = false;
  /** While backing off after a failure, kicks wait: retrying per write would hammer a NATS that is down. */
  private backingOff = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private lagMeasuredAt = 0;
  private lastPassAt = 0;

  constructor(
    private readonly pool: DatabasePool,
    private readonly schema: string,
    private readonly bus: EventBus,
    private readonly log: Logger,
    options: Partial<OutboxRelayOptions> = {},
  ) {
    this.table = sql.identifier([schema, "outbox"]);
    this.parkedTable = sql.identifier([schema, "outbox_parked"]);
    this.options = { ...OUTBOX_RELAY_DEFAULTS, ...options };
  }

  /** Records an event inside `tx`; returns its id. */
  async write<T extends EventType>(tx: DatabaseTransactionConnection, type: T, body: EventBody<T>, meta: EventMetaInput): Promise<string> {
    const [eventId] = await this.writeMany(tx, [{ type, body, meta } as PendingEvent]);
    return eventId!;
  }

  /**
   * Records several events inside `tx` in one statement, in order; returns
   * their ids. Throws EventTooLargeError, before inserting anything, when an
   * encoded event is over MAX_EVENT_BYTES.
   */
  async writeMany(tx: DatabaseTransactionConnection, events: PendingEvent[]): Promise<string[]> {
    if (events.length === 0) return [];
    const rows = encodeEvents(events);
    const spans = startCreateSpans(this.bus.subjectRoot, rows);
    try {
      await tx.query(sql.unsafe`
        INSERT INTO ${this.table} (id, event_type, payload, created_at, traceparent)
        VALUES ${sql.join(
          rows.map(
            (r, i) =>
              sql.fragment`(${r.eventId}, ${r.type}, ${sql.binary(r.bytes)}, clock_timestamp() + ${i} * interval '1 microsecond', ${spans?.[i]?.traceparent ?? null}::text)`,
          ),
          sql.fragment`, `,
        )}`);
    } finally {
      for (const created of spans ?? []) created.span.end();
    }
    this.written.add(tx);
    return rows.map((r) => r.eventId);
  }

  /**
   * The events as an INSERT for the caller to put in its own statement (as
   * a CTE next to the changes they announce), so changes and their events
   * commit together without a transaction's extra round trips. The
   * statement may make many changes: each event names the change it
   * announces by `key`, and is inserted only when `when` holds, a boolean
   * SQL expression over the statement's other CTEs that reads the event's
   * `e.key` (text) and `e.event_type`. The rows go as arrays, so the text is
   * the same whatever their number (one prepared statement for any batch).
   * After the statement, call `settle` with whether it wrote an event:
   * spans end, and the relay is woken. Throws EventTooLargeError, before
   * anything runs, like writeMany.
   */
  prepareKeyedInsert(events: Array<PendingEvent & { key: string }>, when: SqlFragment): { insert: SqlFragment; settle(wrote: boolean): void } {
    const rows = encodeEvents(events);
    const spans = startCreateSpans(this.bus.subjectRoot, rows);
    const [ids, types, payloads] = [rows.map((r) => r.eventId), rows.map((r) => r.type), rows.map((r) => r.bytes)];
    const [keys, traceparents] = [events.map((e) => e.key), rows.map((_, i) => spans?.[i]?.traceparent ?? null)];
    const insert = sql.fragment`
      INSERT INTO ${this.table} (id, event_type, payload, created_at, traceparent)
      SELECT e.id, e.event_type, e.payload, clock_timestamp() + (e.ord - 1) * interval '1 microsecond', e.traceparent
      FROM unnest(${sql.array(ids, "uuid")}, ${sql.array(types, "text")}, ${sql.array(payloads, "bytea")}, ${sql.array(keys, "text")},
                  ${sql.array(traceparents, "text")}) WITH ORDINALITY AS e(id, event_type, payload, key, traceparent, ord)
      WHERE ${when}`;
    return {
      insert,
      settle: (wrote) => {
        for (const created of spans ?? []) created.span.end();
        if (wrote) this.kick();
      },
    };
  }

  /**
   * Runs `work` in a transaction and wakes the relay once it committed, so
   * events go out within milliseconds instead of at the next poll.
   */
  async transaction<T>(work: (tx: DatabaseTransactionConnection) => Promise<T>): Promise<T> {
    let wrote = false;
    const result = await this.pool.transaction(async (tx) => {
      const value = await work(tx);
      wrote = this.written.has(tx);
      return value;
    });
    if (wrote) this.kick();
    return result;
  }

  kick(): void {
    this.pendingKick = true;
    if (!this.backingOff) this.wake?.();
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops the relay after publishing what is already committed. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    await this.relayAll().catch((error: unknown) => this.log.warn({ err: error }, "final outbox flush failed"));
  }

  /**
   * Relays, measures the lag, waits; forever. The lag is measured on every
   * pass whatever the relay did, so a head that cannot be published (NATS
   * down, a row failing every time) shows as a growing lag.
   */
  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.paced();
      this.lastPassAt = Date.now();
      // A pass no write kicked (the fallback poll, nearly always finding
      // nothing) first looks, in the statement that measures the lag: an
      // idle relay costs one statement a poll instead of a transaction's
      // three plus that one. If it cannot tell, the pass runs (and reports
      // the failure as it always did).
      const ok = this.pendingKick || ((await this.measure()) ?? true) ? await this.relayOnce() : true;
      await this.measureLag();
      this.backingOff = !ok;
      await this.sleep(ok ? this.options.pollIntervalMs : this.options.retryDelayMs);
      this.backingOff = false;
    }
  }

  /** One relayAll that reports failure instead of throwing it. */
  private async relayOnce(): Promise<boolean> {
    try {
      await this.relayAll();
      return true;
    } catch (error) {
      failures.inc({ schema: this.schema });
      this.log.warn({ err: error, schema: this.schema }, "outbox relay failed; retrying");
      return false;
    }
  }

  /**
   * Publishes batches until the outbox is empty. Throws when some events
   * failed transiently (after committing what did go out), so the loop backs
   * off instead of taking the same failing head again at once.
   */
  async relayAll(): Promise<number> {
    let total = 0;
    for (;;) {
      this.pendingKick = false;
      const batch = await this.relayBatch();
      total += batch.published;
      this.record(batch);
      if (batch.failed.length > 0) {
        throw new Error(`${batch.failed.length} of ${batch.taken} outbox events failed to publish; they stay for the next attempt`, {
          cause: batch.failed[0],
        });
      }
      if (batch.taken < this.options.batchSize) return total;
    }
  }

  /**
   * Takes the oldest events (rows other relays hold are skipped), publishes
   * them, and in the same transaction deletes exactly the acknowledged ones
   * and parks the ones that can never be published. Rows that failed
   * transiently stay locked until commit, then wait for the next pass; rows
   * acknowledged are gone, so they are never published again.
   */
  private async relayBatch(): Promise<BatchResult> {
    return this.pool.transaction(async (tx) => {
      const rows = await tx.any(sql.type(outboxRow)`
        SELECT id, event_type, payload, created_at, traceparent FROM ${this.table}
        ORDER BY created_at, id LIMIT ${this.options.batchSize} FOR UPDATE SKIP LOCKED`);
      if (rows.length === 0) return { taken: 0, published: 0, parked: [], failed: [] };
      const outcomes = await this.publishAll(rows);
      const publishedIds = outcomes.filter((o) => o.kind === "published").map((o) => o.row.id);
      const parked = outcomes.filter((o): o is ParkedRow => o.kind === "parked");
      await this.deleteRows(tx, publishedIds);
      await this.parkRows(tx, parked);
      const failed = outcomes.flatMap((o) => (o.kind === "failed" ? [o.error] : []));
      return { taken: rows.length, published: publishedIds.length, parked, failed };
    });
  }

  /** Counts and logs a batch once its transaction committed. */
  private record(batch: BatchResult): void {
    published.inc({ schema: this.schema }, batch.published);
    if (batch.parked.length === 0) return;
    parkedTotal.inc({ schema: this.schema }, batch.parked.length);
    for (const { row, reason } of batch.parked) {
      // Error level: a parked event is committed state consumers will not see
      // until someone acts (alert on outbox_parked_total).
      this.log.error(
        { schema: this.schema, event_id: row.id, event_type: row.event_type, size: row.payload.length, reason },
        "outbox event parked: it can never be published",
      );
    }
  }

  /**
   * Publishes the rows concurrently over one connection (the server still
   * receives, and stores, them in this order) and settles each on its own:
   * one bad row must not decide the fate of its batch-mates. When a row fails
   * transiently while a later one succeeds, the later one goes first.
   */
  private publishAll(rows: readonly OutboxRow[]): Promise<RowOutcome[]> {
    const maxPayload = this.bus.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES;
    return Promise.all(rows.map((row) => this.publishRow(row, maxPayload)));
  }

  private async publishRow(row: OutboxRow, maxPayload: number): Promise<RowOutcome> {
    // Checked before sending: an oversized message would make the server
    // close the connection, failing every publish in flight with it.
    const size = publishedSize(row.payload.length, row.id, row.traceparent);
    if (size > maxPayload) {
      return { kind: "parked", row, reason: `${size} bytes with headers, over the server's max_payload of ${maxPayload}` };
    }
    try {
      await this.bus.js.publish(subjectFor(this.bus.subjectRoot, row.event_type as EventType), row.payload, {
        msgID: row.id,
        timeout: this.options.publishTimeoutMs,
        ...(row.traceparent ? { headers: traceparentHeaders(row.traceparent) } : {}),
      });
      return { kind: "published", row };
    } catch (error) {
      if (isPermanentPublishError(error)) return { kind: "parked", row, reason: `publish refused: ${(error as Error).message}` };
      return { kind: "failed", row, error };
    }
  }

  private async deleteRows(tx: DatabaseTransactionConnection, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await tx.query(sql.unsafe`DELETE FROM ${this.table} WHERE id = ANY(${sql.array(ids, "uuid")})`);
  }

  /**
   * Moves rows that can never be published to outbox_parked, with the reason.
   * A row parked again after a requeue replaces its earlier parked copy
   * (a conflict here would roll back the whole batch and wedge the relay).
   */
  private async parkRows(tx: DatabaseTransactionConnection, parked: readonly ParkedRow[]): Promise<void> {
    if (parked.length === 0) return;
    await tx.query(sql.unsafe`
      WITH moved AS (
        DELETE FROM ${this.table} AS o
        USING unnest(${sql.array(
          parked.map((p) => p.row.id),
          "uuid",
        )}, ${sql.array(
          parked.map((p) => p.reason),
          "text",
        )}) AS p(id, reason)
        WHERE o.id = p.id
        RETURNING o.id, o.event_type, o.payload, o.created_at, o.traceparent, p.reason)
      INSERT INTO ${this.parkedTable} (id, event_type, payload, created_at, traceparent, reason)
      SELECT id, event_type, payload, created_at, traceparent, reason FROM moved
      ON CONFLICT (id) DO UPDATE SET
        event_type = excluded.event_type, payload = excluded.payload, created_at = excluded.created_at,
        traceparent = excluded.traceparent, reason = excluded.reason, parked_at = excluded.parked_at`);
  }

  /**
   * Measures the lag (see measureOutbox) at most once per lagIntervalMs. A
   * failed measurement keeps the last values: the relay's own failure is
   * what gets logged.
   */
  private async measureLag(): Promise<void> {
    if (Date.now() - this.lagMeasuredAt < this.options.lagIntervalMs) return;
    await this.measure();
  }

  /** Measures the lag now: whether any row waits, or undefined when the statement failed. */
  private async measure(): Promise<boolean | undefined> {
    this.lagMeasuredAt = Date.now();
    try {
      return await measureOutbox(this.pool, { outbox: this.table, parked: this.parkedTable }, this.schema);
    } catch (error) {
      this.log.debug({ err: error, schema: this.schema }, "outbox lag not measured");
      return undefined;
    }
  }

  /** Waits out what is left of minPassIntervalMs since the last pass began (kicks do not shorten it). */
  private paced(): Promise<void> {
    const left = this.lastPassAt + this.options.minPassIntervalMs - Date.now();
    if (left <= 0 || this.stopping) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, left));
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping || (this.pendingKick && !this.backingOff)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}
