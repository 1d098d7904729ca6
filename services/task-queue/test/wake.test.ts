import { randomBytes } from "node:crypto";
import test from "ava";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createLogger } from "@controlplane/log";
import { NATS_URL } from "@controlplane/testkit";
import { WakeHub } from "../src/wake.js";

// Real core NATS; each test gets a subject prefix of its own, so tests and
// parallel files never wake each other.
const log = createLogger("test", "silent");
const connections: NatsConnection[] = [];

async function hub(prefix?: string): Promise<{ hub: WakeHub; prefix: string }> {
  const nc = await connect({ servers: NATS_URL });
  connections.push(nc);
  const chosen = prefix ?? WakeHub.subjectPrefix(`cptest-${randomBytes(4).toString("hex")}`);
  const created = new WakeHub(nc, chosen, log);
  // The subscription is live once the server has seen it: flush before any test publishes.
  await nc.flush();
  return { hub: created, prefix: chosen };
}

test.after.always(async () => {
  await Promise.all(connections.map((nc) => nc.drain()));
});

/** A wait long enough that only a wake-up, never its timer, can end it within a test's timeout. */
const FOREVER_MS = 600_000;

test("a waiting claim wakes when its runtime is notified", async (t) => {
  const { hub: wake } = await hub();
  const waiter = wake.listen("runtime-a");
  const woken = waiter.next(FOREVER_MS);
  wake.notify("runtime-a", "task-1");
  t.true(await woken);
  waiter.close();
});

test("a wake-up that came before the wait is kept for it, once", async (t) => {
  const { hub: wake } = await hub();
  const waiter = wake.listen("runtime-a");
  const marker = wake.listen("runtime-a");
  wake.notify("runtime-a");
  // The marker waiting proves the wake-up has been delivered to this hub.
  t.true(await marker.next(FOREVER_MS));
  t.true(await waiter.next(FOREVER_MS), "the earlier wake-up answers at once");
  t.false(await waiter.next(0), "and only once");
  waiter.close();
  marker.close();
});

test("another runtime's wake-up does not wake a claim", async (t) => {
  const { hub: wake } = await hub();
  const a = wake.listen("runtime-a");
  const b = wake.listen("runtime-b");
  wake.notify("runtime-b");
  // Delivered in publish order on the one subscription: once b is woken, a's wake-up would have come too.
  t.true(await b.next(FOREVER_MS));
  t.false(await a.next(0));
  a.close();
  b.close();
});

test("a replica's notify wakes claims waiting on every other replica", async (t) => {
  const first = await hub();
  const second = await hub(first.prefix);
  const waiter = second.hub.listen("runtime-a");
  const woken = waiter.next(FOREVER_MS);
  first.hub.notify("runtime-a", "task-1");
  t.true(await woken);
  waiter.close();
});

test("a wait ends false at its timeout, when its claimer goes away, or when the hub closes", async (t) => {
  const { hub: wake } = await hub();
  const timedOut = wake.listen("runtime-a");
  t.false(await timedOut.next(1));
  timedOut.close();

  const abandoned = wake.listen("runtime-a");
  const controller = new AbortController();
  const waiting = abandoned.next(FOREVER_MS, controller.signal);
  controller.abort();
  t.false(await waiting);
  t.false(await abandoned.next(FOREVER_MS, controller.signal), "an aborted claimer does not wait again");
  abandoned.close();

  const released = wake.listen("runtime-a");
  const pending = released.next(FOREVER_MS);
  wake.close();
  t.false(await pending);
  t.false(await wake.listen("runtime-b").next(FOREVER_MS), "a closed hub answers new waits at once");
});

test("the waiting count follows listens and closes", async (t) => {
  const { hub: wake } = await hub();
  t.is(wake.waiting, 0);
  const a1 = wake.listen("runtime-a");
  const a2 = wake.listen("runtime-a");
  const b = wake.listen("runtime-b");
  t.is(wake.waiting, 3);
  a1.close();
  b.close();
  t.is(wake.waiting, 1);
  a2.close();
  t.is(wake.waiting, 0);
  wake.close();
});
