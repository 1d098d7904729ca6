import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, StorageType } from "@nats-io/jetstream";
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";

export interface EventBus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  subjectRoot: string;
}

/** Retention of events in the stream: long enough to replay a day-long outage. */
const STREAM_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** Window in which a repeated message id is dropped; covers relay retries after a crash. */
const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

/**
 * Connects to NATS and makes sure the control-plane stream exists. An
 * unreachable server fails with one line naming the URL.
 */
export async function connectEventBus(options: { url: string; name: string; stream: string; subjectRoot: string }): Promise<EventBus> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.url,
      name: options.name,
      maxReconnectAttempts: -1,
      timeout: 5_000,
      // Otherwise every request (each JetStream publish of the relay) builds
      // two Error objects up front, stack traces included, only to say where
      // a timeout started: always the relay, which logs the failure anyway.
      noAsyncTraces: true,
    });
  } catch (error) {
    throw new Error(`cannot reach NATS at ${options.url}: ${(error as Error).message}`);
  }
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, options.stream, options.subjectRoot);
  return { nc, js: jetstream(nc), jsm, stream: options.stream, subjectRoot: options.subjectRoot };
}

export async function ensureStream(jsm: JetStreamManager, name: string, subjectRoot: string): Promise<void> {
  const config = {
    subjects: [`${subjectRoot}.>`],
    max_age: nanos(STREAM_MAX_AGE_MS),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  };
  try {
    await jsm.streams.info(name);
    await jsm.streams.update(name, config);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.streams.add({ name, storage: StorageType.File, ...config });
  }
}

export async function closeEventBus(bus: EventBus): Promise<void> {
  if (!bus.nc.isClosed()) await bus.nc.drain();
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && /not found/i.test(error.message);
}
