import { randomBytes } from "node:crypto";
import { AckPolicy, DeliverPolicy, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { decodeEvent, ensureStream, type EventPayload, type EventType } from "@controlplane/events";

export const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

/**
 * A stream and subject root of their own for one test file, so parallel test
 * files never see each other's events on the shared NATS server.
 */
export interface TestEvents {
  stream: string;
  subjectRoot: string;
  nc: NatsConnection;
  /** Every event of `type` in the stream so far, decoded, in stream order. */
  read<T extends EventType>(type: T): Promise<Array<{ event: EventPayload<T>; msgId: string | undefined }>>;
  close(): Promise<void>;
}

export async function createTestEvents(): Promise<TestEvents> {
  const suffix = randomBytes(4).toString("hex");
  const stream = `TEST_${suffix}`;
  const subjectRoot = `cptest-${suffix}`;
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, stream, subjectRoot);
  const js = jetstream(nc);
  return {
    stream,
    subjectRoot,
    nc,
    async read(type) {
      const info = await jsm.streams.info(stream);
      const consumer = await jsm.consumers.add(stream, {
        filter_subject: `${subjectRoot}.${type}`,
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.All,
        inactive_threshold: 10_000_000_000,
      });
      const out: Array<{ event: EventPayload<typeof type>; msgId: string | undefined }> = [];
      if (info.state.messages === 0) return out;
      const c = await js.consumers.get(stream, consumer.name);
      const pending = (await c.info()).num_pending;
      if (pending === 0) return out;
      const batch = await c.fetch({ max_messages: pending, expires: 2_000 });
      for await (const message of batch as AsyncIterable<JsMsg>) {
        out.push({ event: decodeEvent(type, message.data), msgId: message.headers?.get("Nats-Msg-Id") });
        if (out.length >= pending) break;
      }
      return out;
    },
    async close() {
      await jsm.streams.delete(stream).catch(() => undefined);
      await nc.drain();
    },
  };
}
