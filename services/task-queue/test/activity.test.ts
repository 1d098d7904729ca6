import { randomBytes, randomUUID } from "node:crypto";
import test from "ava";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { decodeEvent } from "@controlplane/events";
import { TaskRef } from "@controlplane/proto/events/v1/events";
import { createLogger } from "@controlplane/log";
import { NATS_URL } from "@controlplane/testkit";
import { ActivityEvents } from "../src/activity.js";

// Real core NATS, a subject root per test: what a display subscribed to the
// activity subjects receives.
const log = createLogger("test", "silent");
const connections: NatsConnection[] = [];
test.after.always(async () => {
  await Promise.all(connections.map((nc) => nc.drain()));
});

async function setup() {
  const subjectRoot = `cptest-${randomBytes(4).toString("hex")}`;
  const [publisher, display] = await Promise.all([connect({ servers: NATS_URL }), connect({ servers: NATS_URL })]);
  connections.push(publisher, display);
  const received: Msg[] = [];
  let arrived: () => void = () => undefined;
  display.subscribe(`${subjectRoot}.task.>`, {
    callback: (_error, message) => {
      received.push(message);
      arrived();
    },
  });
  await display.flush();
  /** Resolves once `count` events have arrived in all. */
  const arrivals = (count: number) =>
    new Promise<void>((resolve) => {
      arrived = () => {
        if (received.length >= count) resolve();
      };
      arrived();
    });
  const startedTaskIds = () => received.map((message) => decodeEvent("task.started", message.data).task?.taskId);
  return { activity: new ActivityEvents({ nc: publisher, subjectRoot }, log), publisher, subjectRoot, received, arrivals, startedTaskIds };
}

const started = (taskId: string) => ({ task: TaskRef.fromPartial({ taskId }) });

test("a burst of activity events arrives complete and in publish order", async (t) => {
  const { activity, arrivals, startedTaskIds, received } = await setup();
  const ids = Array.from({ length: 20 }, () => randomUUID());
  for (const id of ids) activity.publish("task.started", started(id), "ws");
  await arrivals(ids.length);
  t.deepEqual(startedTaskIds(), ids);
  t.true(received.every((message) => message.subject.endsWith(".task.started")));
});

test("the first event after a quiet spell is written at once, without waiting for the window", async (t) => {
  const { activity, publisher, arrivals, startedTaskIds } = await setup();
  const first = randomUUID();
  activity.publish("task.started", started(first), "ws");
  // A flush round trip on the publisher's connection: whatever it had written is at the server by then.
  await publisher.flush();
  await arrivals(1);
  t.deepEqual(startedTaskIds(), [first]);
});

test("closing publishes what is queued; events after it are dropped", async (t) => {
  const { activity, publisher, subjectRoot, arrivals, startedTaskIds } = await setup();
  const [first, queued, late] = [randomUUID(), randomUUID(), randomUUID()];
  activity.publish("task.started", started(first), "ws");
  activity.publish("task.started", started(queued), "ws");
  activity.close();
  activity.publish("task.started", started(late), "ws");
  // A marker published after, on the same connection: once it is in, anything published before it is too.
  publisher.publish(`${subjectRoot}.task.started`, new Uint8Array(0));
  await arrivals(3);
  t.deepEqual(startedTaskIds().slice(0, 2), [first, queued]);
  t.is(startedTaskIds().length, 3, "only the marker follows them");
});
