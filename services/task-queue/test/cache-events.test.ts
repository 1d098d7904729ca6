import { randomUUID } from "node:crypto";
import test from "ava";
import { closeEventBus, connectEventBus, encodeEvent, EventMeta, subjectFor, type EventBus } from "@controlplane/events";
import { createLogger } from "@controlplane/log";
import { OfflineReason, RuntimeDeletedReason } from "@controlplane/proto/events/v1/events";
import { Runtime } from "@controlplane/proto/registry/v1/registry";
import { createTestEvents, NATS_URL, waitFor, type TestEvents } from "@controlplane/testkit";
import { dropChangedRuntimesOnEvents } from "../src/cache-events.js";
import type { TaskQueueDeps } from "../src/deps.js";
import { RuntimeFreshness } from "../src/freshness.js";
import { RegistryReads } from "../src/reads.js";

// The claim path's runtime caches live long because runtime events drop
// them: over real NATS, with stand-ins for the registry and liveness that
// count how often they are asked.
const log = createLogger("test", process.env.TEST_LOG_LEVEL ?? "silent");
/** Far longer than any test here: only an event can make a cached read go. */
const TTL_MS = 600_000;
const WINDOW_MS = 3_600_000;
let events: TestEvents;
let bus: EventBus;

test.before(async () => {
  events = await createTestEvents();
  bus = await connectEventBus({ url: NATS_URL, name: "cache-events-test", stream: events.stream, subjectRoot: events.subjectRoot });
});
test.after.always(async () => {
  if (bus) await closeEventBus(bus);
  await events?.close();
});

function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const asked = { runtimes: 0, liveness: 0 };
  const registry = {
    getRuntime: async ({ runtimeId }: { runtimeId: string }) => {
      asked.runtimes++;
      return { runtime: Runtime.fromPartial({ id: runtimeId, workspaceId: randomUUID(), status: "online" }) };
    },
  };
  const liveness = {
    getRuntimeLiveness: async () => {
      asked.liveness++;
      return { status: "online", lastSeenAt: new Date(), lastBeatAt: undefined, statusChangedAt: undefined };
    },
  };
  const reads = new RegistryReads(registry as never, {} as never, TTL_MS);
  const freshness = new RuntimeFreshness(liveness as never, WINDOW_MS, TTL_MS, log);
  const deps = { bus, log, reads, freshness } as unknown as TaskQueueDeps;
  t.teardown(dropChangedRuntimesOnEvents(deps));
  return { asked, reads, freshness };
}

const meta = () => EventMeta.fromPartial({ eventId: randomUUID(), occurredAt: new Date(), workspaceId: randomUUID() });

/** Publishes like the relay does (JetStream), which core subscribers hear too. */
async function publish(type: "runtime.offline" | "runtime.deleted" | "runtime.online", runtimeId: string) {
  const payload =
    type === "runtime.offline"
      ? { meta: meta(), runtimeId, reason: OfflineReason.OFFLINE_REASON_DEREGISTER }
      : type === "runtime.deleted"
        ? { meta: meta(), runtimeId, reason: RuntimeDeletedReason.RUNTIME_DELETED_REASON_MERGED }
        : { meta: meta(), runtimeId, lastSeenAt: new Date() };
  await bus.js.publish(subjectFor(events.subjectRoot, type), encodeEvent(type, payload as never));
}

test("runtime.offline makes the next claim ask liveness again instead of trusting its cached yes", async (t) => {
  const { asked, freshness } = setup(t);
  const runtime = Runtime.fromPartial({ id: randomUUID(), status: "online" });
  t.true(await freshness.fresh(runtime));
  t.true(await freshness.fresh(runtime));
  t.is(asked.liveness, 1, "a yes is reused");
  await publish("runtime.offline", runtime.id);
  await waitFor("liveness to be asked again", async () => (await freshness.fresh(runtime)) && asked.liveness === 2);
  t.pass();
});

test("runtime.deleted drops the cached registry row of the runtime, and only that one", async (t) => {
  const { asked, reads } = setup(t);
  const [gone, kept] = [randomUUID(), randomUUID()];
  await reads.runtimes.get(gone);
  await reads.runtimes.get(kept);
  t.is(asked.runtimes, 2);
  await publish("runtime.deleted", gone);
  await waitFor("the registry to be asked again", async () => (await reads.runtimes.get(gone)) && asked.runtimes === 3);
  await reads.runtimes.get(kept);
  t.is(asked.runtimes, 3, "the other runtime is still served from the cache");
});
