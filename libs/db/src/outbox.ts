import { randomUUID } from "node:crypto";
import type { DatabasePool, DatabaseTransactionConnection } from "slonik";
import { z } from "zod";
import { encodeEvent, EventMeta, subjectFor, type EventBody, type EventBus, type EventPayload, type EventType } from "@controlplane/events";
import type { Logger } from "@controlplane/log";
import { counter, gauge } from "@controlplane/metrics";
import { sql } from "./sql.js";

const published = counter({
  name: "outbox_published_total",
  help: "Events relayed from the outbox to JetStream.",
  labelNames: ["schema"] as const,
});
const lagSeconds = gauge({
  name: "outbox_lag_seconds",
  help: "Age of the oldest event still waiting in the outbox (0 when empty).",
  labelNames: ["schema"] as const,
});
const failures = counter({
  name: "outbox_relay_failures_total",
  help: "Relay batches that failed to publish and were retried.",
  labelNames: ["schema"] as const,
});

/** Events relayed per transaction. */
const BATCH_SIZE = 256;
/** Fallback poll for rows committed by other replicas or left by a crash. */
const POLL_INTERVAL_MS = 1_000;
/** Wait before retrying after NATS refused a batch. */
const RETRY_DELAY_MS = 1_000;
const PUBLISH_TIMEOUT_MS = 5_000;

const outboxRow = z.object({ id: z.string(), event_type: z.string(), payload: z.instanceof(Buffer), created_at: z.date() });
/** Minimum time between two outbox lag measurements. */
const LAG_INTERVAL_MS = 1_000;

export interface EventMetaInput {
  workspaceId: string;
  actorId?: string;
}

/** One event to record; the outbox fills in its meta. */
export type PendingEvent = { [T in EventType]: { type: T; body: EventBody<T>; meta: EventMetaInput } }[EventType];

/**
 * The transactional outbox of one service schema. `write` records an event in
 * the caller's transaction; the relay publishes committed events to JetStream
 * with the event id as message id (so a re-publish after a crash is dropped
 * by the stream) and deletes them. A NATS outage delays events, never loses them.
 */
export class Outbox {
  private readonly table;
  /** Transactions that wrote an event: only those wake the relay. */
  private readonly written = new WeakSet<object>();
  private wake: (() => void) | undefined;
  private pendingKick = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private lagMeasuredAt = 0;

  constructor(
    private readonly pool: DatabasePool,
    private readonly schema: string,
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {
    this.table = sql.identifier([schema, "outbox"]);
  }

  /** Records an event inside `tx`; returns its id. */
  async write<T extends EventType>(
    tx: DatabaseTransactionConnection,
    type: T,
    body: EventBody<T>,
    meta: EventMetaInput,
  ): Promise<string> {
    const [eventId] = await this.writeMany(tx, [{ type, body, meta } as PendingEvent]);
    return eventId!;
  }

  /** Records several events inside `tx` in one statement, in order; returns their ids. */
  async writeMany(tx: DatabaseTransactionConnection, events: PendingEvent[]): Promise<string[]> {
    if (events.length === 0) return [];
    const occurredAt = new Date();
    const rows = events.map(({ type, body, meta }) => {
      const eventId = randomUUID();
      const payload = {
        ...body,
        meta: EventMeta.fromPartial({ eventId, occurredAt, workspaceId: meta.workspaceId, actorId: meta.actorId }),
      } as EventPayload<typeof type>;
      return { eventId, type, bytes: Buffer.from(encodeEvent(type, payload)) };
    });
    await tx.query(sql.unsafe`
      INSERT INTO ${this.table} (id, event_type, payload, created_at)
      VALUES ${sql.join(
        rows.map((r, i) => sql.fragment`(${r.eventId}, ${r.type}, ${sql.binary(r.bytes)}, clock_timestamp() + ${i} * interval '1 microsecond')`),
        sql.fragment`, `,
      )}`);
    this.written.add(tx);
    return rows.map((r) => r.eventId);
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
    this.wake?.();
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

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.relayAll();
      } catch (error) {
        failures.inc({ schema: this.schema });
        this.log.warn({ err: error, schema: this.schema }, "outbox relay failed; retrying");
        await this.sleep(RETRY_DELAY_MS);
        continue;
      }
      await this.sleep(POLL_INTERVAL_MS);
    }
  }

  /** Publishes batches until the outbox is empty. */
  async relayAll(): Promise<number> {
    let total = 0;
    for (;;) {
      this.pendingKick = false;
      const count = await this.relayBatch();
      total += count;
      if (count < BATCH_SIZE) break;
    }
    await this.measureLag();
    return total;
  }

  /**
   * Takes the oldest events (rows other relays hold are skipped), publishes
   * them in order and commits their deletion; a failed publish rolls the
   * deletion back and they are tried again.
   */
  private async relayBatch(): Promise<number> {
    return this.pool.transaction(async (tx) => {
      const taken = await tx.any(sql.type(outboxRow)`
        DELETE FROM ${this.table} WHERE id IN (
          SELECT id FROM ${this.table} ORDER BY created_at, id LIMIT ${BATCH_SIZE} FOR UPDATE SKIP LOCKED)
        RETURNING id, event_type, payload, created_at`);
      if (taken.length === 0) return 0;
      const rows = [...taken].sort((a, b) => a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : 1));
      // Published concurrently over one connection: the server still receives
      // (and stores) them in this order.
      await Promise.all(
        rows.map((row) =>
          this.bus.js.publish(subjectFor(this.bus.subjectRoot, row.event_type as EventType), row.payload, {
            msgID: row.id,
            timeout: PUBLISH_TIMEOUT_MS,
          }),
        ),
      );
      published.inc({ schema: this.schema }, rows.length);
      return rows.length;
    });
  }

  private async measureLag(): Promise<void> {
    // At most once a second: it is a gauge, not worth a query per batch.
    if (Date.now() - this.lagMeasuredAt < LAG_INTERVAL_MS) return;
    this.lagMeasuredAt = Date.now();
    const oldest = await this.pool.maybeOneFirst(sql.type(z.object({ age: z.number() }))`
      SELECT extract(epoch FROM now() - min(created_at))::float8 AS age FROM ${this.table} HAVING count(*) > 0`);
    lagSeconds.set({ schema: this.schema }, oldest ?? 0);
  }

  private sleep(ms: number): Promise<void> {
    if (this.pendingKick || this.stopping) return Promise.resolve();
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
