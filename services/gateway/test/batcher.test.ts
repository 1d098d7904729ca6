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
  const batcher = new MicroBatcher(send, 100);
  const results = await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.submit(n)));
  t.deepEqual(results, [2, 4, 6, 8, 10]);
  t.deepEqual(batches, [[1, 2, 3, 4, 5]]);
});

test("a lone request goes out at the end of the turn it was made in", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, 100);
  t.is(await batcher.submit(7), 14);
  t.is(await batcher.submit(8), 16);
  t.deepEqual(batches, [[7], [8]], "two turns, two calls");
});

test("no call carries more than maxBatch items; a turn's excess goes out in further calls", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, 3);
  const results = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((n) => batcher.submit(n)));
  t.deepEqual(results, [2, 4, 6, 8, 10, 12, 14]);
  t.deepEqual(batches, [[1, 2, 3], [4, 5, 6], [7]]);
});

test("one item's failure rejects only its caller", async (t) => {
  const refused = new CodedError(status.NOT_FOUND, "no such runtime");
  const batcher = new MicroBatcher<string, string>(
    async (items) => items.map((item) => (item === "bad" ? { ok: false, error: refused } : { ok: true, value: item.toUpperCase() })),
    10,
  );
  const [good, bad, other] = await Promise.allSettled([batcher.submit("a"), batcher.submit("bad"), batcher.submit("b")]);
  t.deepEqual(good, { status: "fulfilled", value: "A" });
  t.deepEqual(bad, { status: "rejected", reason: refused });
  t.deepEqual(other, { status: "fulfilled", value: "B" });
  t.true(hasCode(refused, status.NOT_FOUND), "a CodedError reads as its gRPC status");
});

test("a failed call rejects every caller in its batch with the call's error", async (t) => {
  const down = new Error("service unavailable");
  const batcher = new MicroBatcher<number, number>(async () => {
    throw down;
  }, 10);
  const outcomes = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
  t.deepEqual(outcomes, [
    { status: "rejected", reason: down },
    { status: "rejected", reason: down },
  ]);
});

test("an answer with fewer items than were sent fails the unanswered callers INTERNAL", async (t) => {
  const batcher = new MicroBatcher<number, number>(async (items) => items.slice(0, 1).map((item) => ({ ok: true, value: item })), 10);
  const [first, second] = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
  t.deepEqual(first, { status: "fulfilled", value: 1 });
  t.is(second.status, "rejected");
  const reason = (second as PromiseRejectedResult).reason;
  t.true(reason instanceof CodedError);
  t.true(hasCode(reason, status.INTERNAL));
});

test("the call runs outside the scope of the caller that started the batch", async (t) => {
  const seen: Array<string | undefined> = [];
  const batcher = new MicroBatcher<number, number>(async (items) => {
    seen.push(currentScope()?.requestId);
    return items.map((item) => ({ ok: true, value: item }));
  }, 1);
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
  const batcher = new MicroBatcher(send, 100);
  t.deepEqual(await submitFromSeparateCallbacks(batcher, [1, 2, 3]), [2, 4, 6]);
  t.deepEqual(batches, [[1, 2, 3]], "dispatched at the end of the turn, not after each callback's microtasks");
});

test("nothing is memoised: an item submitted again is sent again", async (t) => {
  const { batches, send } = recordingSend();
  const batcher = new MicroBatcher(send, 100);
  t.deepEqual(await Promise.all([batcher.submit(1), batcher.submit(1)]), [2, 2]);
  t.is(await batcher.submit(1), 2);
  t.deepEqual(batches, [[1, 1], [1]]);
});
