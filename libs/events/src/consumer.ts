import { AckPolicy, DeliverPolicy, type ConsumerMessages } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { Logger } from "@controlplane/log";
import { context } from "@controlplane/tracing";
import { decodeEvent, subjectFor, type EventPayload, type EventType } from "./catalog.js";
import type { EventBus } from "./connection.js";
import { endConsumerSpan, startConsumerSpan } from "./tracing.js";

export interface ConsumerOptions<T extends EventType> {
  bus: EventBus;
  /** Durable name: one per (service, purpose); replicas share it and split the work. */
  durable: string;
  type: T;
  /**
   * Handles one event. Must be idempotent: delivery is at least once. A thrown
   * error redelivers the event after a backoff; returning `{ retryAfterMs }`
   * asks for it again later without counting as a failure (e.g. a grace period).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler with nothing to say is a plain async function (Promise<void>).
  handler: (event: EventPayload<T>) => Promise<void | { retryAfterMs: number }>;
  log: Logger;
}

export interface RunningConsumer {
  stop(): Promise<void>;
}

/** Redelivery delays after a handler failure, by attempt. */
const RETRY_DELAYS_MS = [250, 1_000, 5_000, 15_000, 60_000];
const ACK_WAIT_MS = 30_000;

/** Starts a durable, explicitly acknowledged consumer of one event type. */
export async function startConsumer<T extends EventType>(options: ConsumerOptions<T>): Promise<RunningConsumer> {
  const { bus, durable, type, handler, log } = options;
  const config = {
    durable_name: durable,
    filter_subject: subjectFor(bus.subjectRoot, type),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ACK_WAIT_MS),
  };
  try {
    await bus.jsm.consumers.info(bus.stream, durable);
    await bus.jsm.consumers.update(bus.stream, durable, { filter_subject: config.filter_subject, ack_wait: config.ack_wait });
  } catch {
    await bus.jsm.consumers.add(bus.stream, config);
  }
  const consumer = await bus.js.consumers.get(bus.stream, durable);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: 64 });
  const loop = (async () => {
    for await (const message of messages) {
      let event: EventPayload<T>;
      try {
        event = decodeEvent(type, message.data);
      } catch (error) {
        // A message that cannot be decoded will never decode: drop it loudly.
        log.error({ err: error, durable, seq: message.seq }, "undecodable event terminated");
        message.term();
        continue;
      }
      // With tracing on: a CONSUMER span, child of the context the event was written in.
      const traced = startConsumerSpan({ type, subject: message.subject, durable, eventId: event.meta?.eventId, headers: message.headers });
      try {
        const outcome = await (traced ? context.with(traced.context, () => handler(event)) : handler(event));
        const retry = outcome && outcome.retryAfterMs > 0;
        if (retry) message.nak(outcome.retryAfterMs);
        else message.ack();
        endConsumerSpan(traced?.span, retry ? "retry" : "ack");
      } catch (error) {
        const delay = RETRY_DELAYS_MS[Math.min(message.info.deliveryCount - 1, RETRY_DELAYS_MS.length - 1)];
        log.warn({ err: error, durable, event_id: event.meta?.eventId, attempt: message.info.deliveryCount }, "event handler failed; will redeliver");
        message.nak(delay);
        endConsumerSpan(traced?.span, "failed", error);
      }
    }
  })();
  return {
    async stop() {
      await messages.close();
      await loop;
    },
  };
}
