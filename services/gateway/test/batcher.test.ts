import test from "ava";
import { currentScope, hasCode, runInScope, status } from "@controlplane/grpc";
import { CodedError, MicroBatcher, type Settled } from "../src/batcher.js";

/** A send that records each batch and answers every item doubled. */
function recordingSend() {
  const batches: number[][] = [];
  const send = async (items: number[]): Promise<Array<Settled<number>>> => {
    batches.push(items);
    return items.map((item) => ({ ok: true, value: item * 2 }));
  };
  return { batches, send };
}

test("requests made in one turn go out in one call, each caller getting its own result", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, { maxBatch: 100 });
  const results = await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.submit(n)));
  t.deepEqual(results, [2, 4, 6, 8, 10]);
  t.deepEqual(batches, [[1, 2, 3, 4, 5]]);
});

test("a lone request goes out at the end of the turn it was made in", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, { maxBatch: 100 });
  t.is(await batcher.submit(7), 14);
  t.is(await batcher.submit(8), 16);
  t.deepEqual(batches, [[7], [8]], "two turns, two calls");
});

test("no call carries more than maxBatch items; a turn's excess goes out in further calls", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, { maxBatch: 3 });
  const results = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((n) => batcher.submit(n)));
  t.deepEqual(results, [2, 4, 6, 8, 10, 12, 14]);
  t.deepEqual(batches, [[1, 2, 3], [4, 5, 6], [7]]);
});

test("one item's failure rejects only its caller", async (t) => {
  const refused = new CodedError(status.NOT_FOUND, "no such runtime");
  const batcher = new MicroBatcher<string, string>(
    async (items) => items.map((item) => (item === "bad" ? { ok: false, error: refused } : { ok: true, value: item.toUpperCase() })),
    { maxBatch: 10 },
  );
  const [good, bad, other] = await Promise.allSettled([batcher.submit("a"), batcher.submit("bad"), batcher.submit("b")]);
  t.deepEqual(good, { status: "fulfilled", value: "A" });
  t.deepEqual(bad, { status: "rejected", reason: refused });
  t.deepEqual(other, { status: "fulfilled", value: "B" });
  t.true(hasCode(refused, status.NOT_FOUND), "a CodedError reads as its gRPC status");
});

test("a failed call rejects every caller in its batch with the call's error", async (t) => {
  const down = new Error("service unavailable");
  const batcher = new MicroBatcher<number, number>(
    async () => {
      throw down;
    },
    { maxBatch: 10 },
  );
  const outcomes = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
  t.deepEqual(outcomes, [
    { status: "rejected", reason: down },
    { status: "rejected", reason: down },
  ]);
});

test("an answer with fewer items than were sent fails the unanswered callers INTERNAL", async (t) => {
  const batcher = new MicroBatcher<number, number>(async (items) => items.slice(0, 1).map((item) => ({ ok: true, value: item })), { maxBatch: 10 });
  const [first, second] = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
  t.deepEqual(first, { status: "fulfilled", value: 1 });
  t.is(second.status, "rejected");
  const reason = (second as PromiseRejectedResult).reason;
  t.true(reason instanceof CodedError);
  t.true(hasCode(reason, status.INTERNAL));
});

test("the call runs outside the scope of the caller that started the batch", async (t) => {
  const seen: Array<string | undefined> = [];
  const batcher = new MicroBatcher<number, number>(
    async (items) => {
      seen.push(currentScope()?.requestId);
      return items.map((item) => ({ ok: true, value: item }));
    },
    { maxBatch: 1 },
  );
  const controller = new AbortController();
  await runInScope({ requestId: "first-caller", signal: controller.signal }, () => batcher.submit(1));
  t.deepEqual(seen, [undefined]);
});

/** Submits each item from a callback of its own, all in one check phase, as requests arriving in one loop turn are. */
function submitFromSeparateCallbacks<I, R>(batcher: MicroBatcher<I, R>, items: I[]): Promise<R[]> {
  return Promise.all(items.map((item) => new Promise<R>((resolve, reject) => setImmediate(() => batcher.submit(item).then(resolve, reject)))));
}

test("requests from separate callbacks of one loop turn share a call, as HTTP requests of one turn do", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, { maxBatch: 100 });
  t.deepEqual(await submitFromSeparateCallbacks(batcher, [1, 2, 3]), [2, 4, 6]);
  t.deepEqual(batches, [[1, 2, 3]], "dispatched at the end of the turn, not after each callback's microtasks");
});

test("nothing is memoised: an item submitted again is sent again", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, { maxBatch: 100 });
  t.deepEqual(await Promise.all([batcher.submit(1), batcher.submit(1)]), [2, 2]);
  t.is(await batcher.submit(1), 2);
  t.deepEqual(batches, [[1, 1], [1]]);
});

/** Long enough that two submits a loop turn apart never straddle its end, even on a loaded machine. */
const INTERVAL_MS = 1_000;

test("with an interval, a request after a quiet spell still goes out at the end of its turn", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, { maxBatch: 100, minIntervalMs: 3_600_000 });
  // An hour's interval: had the first request waited for it, this would time out.
  t.is(await batcher.submit(1), 2);
  t.deepEqual(batches, [[1]]);
});

test("with an interval, requests from later turns within it wait and share the next call", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, { maxBatch: 100, minIntervalMs: INTERVAL_MS });
  t.is(await batcher.submit(1), 2);
  const later = batcher.submit(2);
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(batches, [[1]], "not sent at the end of its turn: the interval has not passed");
  const last = batcher.submit(3);
  t.deepEqual(await Promise.all([later, last]), [4, 6]);
  t.deepEqual(batches, [[1], [2, 3]]);
});

test("with an interval, a full batch does not wait for more: the excess goes in further calls at the same time", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, { maxBatch: 2, minIntervalMs: INTERVAL_MS });
  await batcher.submit(0);
  t.deepEqual(await submitFromSeparateCallbacks(batcher, [1, 2, 3]), [2, 4, 6]);
  // Each call waits on a timer of its own, both due at the interval's end: they may fire in either order.
  const [first, ...later] = batches;
  t.deepEqual(first, [0]);
  t.deepEqual(
    later.sort((a, b) => a[0]! - b[0]!),
    [[1, 2], [3]],
  );
});
