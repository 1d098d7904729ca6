import test from "ava";
import fc from "fast-check";
import { InvalidArgumentError } from "@controlplane/grpc";
import { decodePageToken, encodePageToken, nextPageToken, PAGE_ROWS, pageRows } from "../src/paging.js";

const micros = fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }).map(String);

test("property: a token decodes to the cursor it was made from, for its own list only", (t) => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), micros, fc.uuid(), (seq, us, id) => {
      const token = encodePageToken<"messages">({ k: "m", seq, us, id });
      const back = decodePageToken("messages", token);
      return back?.seq === seq && back.us === us && back.id === id && /^[A-Za-z0-9_-]+$/.test(token);
    }),
  );
  const tasksToken = encodePageToken<"tasks">({ k: "t", us: "1", id: "00000000-0000-4000-8000-000000000000" });
  t.throws(() => decodePageToken("messages", tasksToken), { instanceOf: InvalidArgumentError, message: "invalid page_token" });
  t.throws(() => decodePageToken("pending", tasksToken), { message: "invalid page_token" });
  t.truthy(decodePageToken("tasks", tasksToken));
});

test("no token means the first page; a token that is not one is INVALID_ARGUMENT", (t) => {
  t.is(decodePageToken("messages", undefined), undefined);
  t.is(decodePageToken("messages", ""), undefined);
  for (const bad of ["x", "%%%", Buffer.from("[1]").toString("base64url"), Buffer.from('{"k":"m","seq":1.5,"us":"1","id":"x"}').toString("base64url")]) {
    t.throws(() => decodePageToken("messages", bad), { instanceOf: InvalidArgumentError, message: "invalid page_token" }, bad);
  }
});

test("page size: 0 or absent is the default, larger is lowered, negative is refused", (t) => {
  t.is(pageRows(undefined), PAGE_ROWS);
  t.is(pageRows(0), PAGE_ROWS);
  t.is(pageRows(7), 7);
  t.is(pageRows(PAGE_ROWS * 10), PAGE_ROWS);
  t.throws(() => pageRows(-1), { instanceOf: InvalidArgumentError, message: "invalid page_size" });
});

test("a next token only when the query looked at more rows than it returned", (t) => {
  const cursor = (row: { n: number }) => `after-${row.n}`;
  t.is(nextPageToken([], cursor), "");
  t.is(
    nextPageToken(
      [
        { n: 1, fetched: 2 },
        { n: 2, fetched: 2 },
      ],
      cursor,
    ),
    "",
  );
  t.is(
    nextPageToken(
      [
        { n: 1, fetched: 3 },
        { n: 2, fetched: 3 },
      ],
      cursor,
    ),
    "after-2",
  );
});
