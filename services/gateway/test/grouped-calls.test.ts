import test from "ava";
import { currentScope, hasCode, runInScope, status } from "@controlplane/grpc";
import { CodedError, type Settled } from "../src/batcher.js";
import { GroupedCalls } from "../src/grouped-calls.js";

/** Settings every test shares: a deadline no test reaches unless it means to. */
const TEST = { kind: "test", deadlineMs: 60_000 };

/**
 * A send whose calls stay open until the test answers them: each call's
 * items are recorded, and `answer(i)` settles call i with every item doubled.
 */
function heldSend() {
  const calls: Array<{ items: number[]; deadlineMs: number; answer(): void; fail(error: unknown): void }> = [];
  const send = (items: number[], deadlineMs: number) =>
    new Promise<Array<Settled<number>>>((resolve, reject) => {
      calls.push({ items, deadlineMs, answer: () => resolve(items.map((item) => ({ ok: true, value: item * 2 }))), fail: reject });
    });
  const itemsOf = () => calls.map(({ items }) => items);
  return { calls, send, itemsOf };
}

/** The next call leaves once the one before it has handed out its answers: promise callbacks, all run by the next turn. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Answers the calls one at a time, each once the one before it has finished, until no new call follows. */
async function answerInTurn(calls: Array<{ answer(): void }>): Promise<void> {
  for (let answered = 0; answered < calls.length; answered++) {
    calls[answered]!.answer();
    await nextTurn();
  }
}

test("an item submitted while calls are free goes out at once, alone", async (t) => {
  const { calls, send, itemsOf } = heldSend();
  const grouped = new GroupedCalls(send, { ...TEST, maxInFlight: 2, maxBatch: 10 });
  const first = grouped.submit(1);
  const second = grouped.submit(2);
  t.deepEqual(itemsOf(), [[1], [2]], "two calls in flight, each sent when its item was submitted");
  for (const call of calls) call.answer();
  t.deepEqual(await Promise.all([first, second]), [2, 4]);
});

test("items submitted while every call runs wait and share the next call, in order", async (t) => {
  const { calls, send, itemsOf } = heldSend();
  const grouped = new GroupedCalls(send, { ...TEST, maxInFlight: 1, maxBatch: 10 });
  const results = [1, 2, 3, 4].map((n) => grouped.submit(n));
  t.deepEqual(itemsOf(), [[1]], "the rest wait for the call in flight");
  calls[0]!.answer();
  await nextTurn();
  t.deepEqual(itemsOf(), [[1], [2, 3, 4]], "the waiting items go in one call when it finishes");
  calls[1]!.answer();
  t.deepEqual(await Promise.all(results), [2, 4, 6, 8]);
});

test("no call carries more than maxBatch items; the rest go in the calls after it", async (t) => {
  const { calls, send, itemsOf } = heldSend();
  const grouped = new GroupedCalls(send, { ...TEST, maxInFlight: 1, maxBatch: 2 });
  const results = [1, 2, 3, 4, 5].map((n) => grouped.submit(n));
  await answerInTurn(calls);
  t.deepEqual(await Promise.all(results), [2, 4, 6, 8, 10]);
  t.deepEqual(itemsOf(), [[1], [2, 3], [4, 5]]);
});

test("a call's items weigh at most maxWeight together; a heavier item goes alone", async (t) => {
  const { calls, send, itemsOf } = heldSend();
  const grouped = new GroupedCalls(send, { ...TEST, maxInFlight: 1, maxBatch: 10, maxWeight: 10, weigh: (n) => n });
  const results = [1, 4, 5, 3, 20, 2].map((n) => grouped.submit(n));
  await answerInTurn(calls);
  t.deepEqual(await Promise.all(results), [2, 8, 10, 6, 40, 4]);
  t.deepEqual(itemsOf(), [[1], [4, 5], [3], [20], [2]]);
});

test("an item whose caller went away while it waited is left out and rejected as cancelled", async (t) => {
  const { calls, send, itemsOf } = heldSend();
  const grouped = new GroupedCalls(send, { ...TEST, maxInFlight: 1, maxBatch: 10 });
  let gone = false;
  const scope = { requestId: "r-1", isGone: () => gone };
  const first = grouped.submit(1);
  const leaving = runInScope(scope, () => grouped.submit(2));
  const staying = grouped.submit(3);
  gone = true;
  calls[0]!.answer();
  const [left] = await Promise.allSettled([leaving]);
  t.is(left.status, "rejected");
  t.true(hasCode((left as PromiseRejectedResult).reason, status.CANCELLED));
  t.deepEqual(itemsOf(), [[1], [3]], "the departed caller's item was never sent");
  calls[1]!.answer();
  t.deepEqual(await Promise.all([first, staying]), [2, 6]);
});

test("waiting counts against an item's deadline: a call gets what its earliest item has left", async (t) => {
  const { calls, send } = heldSend();
  const clock = { ms: 0 };
  const grouped = new GroupedCalls(send, { ...TEST, maxInFlight: 1, maxBatch: 10, now: () => clock.ms });
  const results = [grouped.submit(1)];
  t.is(calls[0]!.deadlineMs, TEST.deadlineMs);
  clock.ms = 1_000;
  results.push(grouped.submit(2));
  clock.ms = 3_000;
  results.push(grouped.submit(3));
  clock.ms = 5_000;
  calls[0]!.answer();
  await nextTurn();
  t.deepEqual(calls[1]?.items, [2, 3]);
  t.is(calls[1]!.deadlineMs, TEST.deadlineMs - 4_000, "item 2 waited 4 s of its deadline");
  calls[1]!.answer();
  t.deepEqual(await Promise.all(results), [2, 4, 6]);
});

test("an item whose deadline passed while it waited is not sent, and fails DEADLINE_EXCEEDED", async (t) => {
  const { calls, send, itemsOf } = heldSend();
  const clock = { ms: 0 };
  const grouped = new GroupedCalls(send, { ...TEST, maxInFlight: 1, maxBatch: 10, now: () => clock.ms });
  const first = grouped.submit(1);
  const late = grouped.submit(2);
  clock.ms = TEST.deadlineMs;
  calls[0]!.answer();
  const [expired] = await Promise.allSettled([late]);
  t.true(expired.status === "rejected" && hasCode(expired.reason, status.DEADLINE_EXCEEDED));
  t.is(await first, 2);
  await nextTurn();
  t.deepEqual(itemsOf(), [[1]], "the expired item was never sent");
  const next = grouped.submit(3);
  t.deepEqual(itemsOf(), [[1], [3]], "a new item has its own time");
  t.is(calls[1]!.deadlineMs, TEST.deadlineMs);
  calls[1]!.answer();
  t.is(await next, 6);
});

test("one item's failure rejects only its caller", async (t) => {
  const refused = new CodedError(status.NOT_FOUND, "task not found");
  const grouped = new GroupedCalls<string, string>(
    async (items) => items.map((item) => (item === "bad" ? { ok: false, error: refused } : { ok: true, value: item.toUpperCase() })),
    { ...TEST, maxInFlight: 1, maxBatch: 10 },
  );
  const outcomes = await Promise.allSettled([grouped.submit("a"), grouped.submit("bad"), grouped.submit("b")]);
  t.deepEqual(outcomes, [
    { status: "fulfilled", value: "A" },
    { status: "rejected", reason: refused },
    { status: "fulfilled", value: "B" },
  ]);
});

test("a failed call rejects the items it carried and no others; the next call still goes", async (t) => {
  const { calls, send } = heldSend();
  const grouped = new GroupedCalls(send, { ...TEST, maxInFlight: 1, maxBatch: 10 });
  const down = new CodedError(status.UNAVAILABLE, "task queue unavailable");
  const first = grouped.submit(1);
  const later = [grouped.submit(2), grouped.submit(3)];
  calls[0]!.fail(down);
  await t.throwsAsync(first, { is: down });
  await nextTurn();
  calls[1]!.answer();
  t.deepEqual(await Promise.all(later), [4, 6]);
});

test("an answer with fewer outcomes than items fails the unanswered callers INTERNAL", async (t) => {
  const grouped = new GroupedCalls<number, number>(async (items) => items.slice(0, 1).map((item) => ({ ok: true, value: item })), {
    ...TEST,
    maxInFlight: 1,
    maxBatch: 10,
  });
  const held = grouped.submit(0);
  const [first, second] = await Promise.allSettled([grouped.submit(1), grouped.submit(2)]);
  await held;
  t.deepEqual(first, { status: "fulfilled", value: 1 });
  t.is(second.status, "rejected");
  t.true(hasCode((second as PromiseRejectedResult).reason, status.INTERNAL));
});

test("with maxInFlight 0 every item is a call of its own, sent at once", async (t) => {
  const { calls, send, itemsOf } = heldSend();
  const grouped = new GroupedCalls(send, { ...TEST, maxInFlight: 0, maxBatch: 10 });
  const results = [1, 2, 3].map((n) => grouped.submit(n));
  t.deepEqual(itemsOf(), [[1], [2], [3]]);
  for (const call of calls) call.answer();
  t.deepEqual(await Promise.all(results), [2, 4, 6]);
});

test("the call runs outside the scope of the caller whose item started it", async (t) => {
  const seen: Array<string | undefined> = [];
  const grouped = new GroupedCalls<number, number>(
    async (items) => {
      seen.push(currentScope()?.requestId);
      return items.map((item) => ({ ok: true, value: item }));
    },
    { ...TEST, maxInFlight: 1, maxBatch: 10 },
  );
  t.is(await runInScope({ requestId: "first" }, () => grouped.submit(1)), 1);
  t.deepEqual(seen, [undefined]);
});

test("settings that could never send are refused", (t) => {
  const send = async () => [];
  t.throws(() => new GroupedCalls(send, { ...TEST, maxInFlight: 1, maxBatch: 0 }), { instanceOf: RangeError });
  t.throws(() => new GroupedCalls(send, { ...TEST, maxInFlight: -1, maxBatch: 1 }), { instanceOf: RangeError });
});
