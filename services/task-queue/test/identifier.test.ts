import test from "ava";
import fc from "fast-check";
import { identifierNumber } from "../src/work-items.js";

test("an identifier's number is the positive digits after the last dash, prefix unchecked", (t) => {
  const cases: Array<[string, number | null]> = [
    ["ABC-42", 42],
    ["abc-0042", 42],
    ["MY-TEAM-7", 7],
    ["é-3", 3],
    ["ABC-0", null],
    ["ABC-", null],
    ["-42", null],
    ["ABC-4x2", null],
    ["ABC-٤٢", null],
    ["ABC42", null],
    ["", null],
    ["ABC-2147483647", 2147483647],
    // Go's int32 conversion of a larger number: wraps to 0 or a negative, so never an issue.
    ["ABC-2147483648", null],
    ["ABC-4294967296", null],
    // ... or to a positive number again, which Go then looks up as it is.
    ["ABC-4294967297", 1],
    // A UUID whose last group is all digits reads as an identifier first, as in the original.
    ["6f1c2a4e-0000-4000-8000-000000000042", 42],
  ];
  for (const [ref, number] of cases) t.is(identifierNumber(ref), number, ref);
});

test("any prefix followed by a dash and a positive int32 gives that number back", (t) => {
  fc.assert(
    fc.property(fc.string({ minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 2147483647 }), (prefix, number) => {
      t.is(identifierNumber(`${prefix}-${number}`), number);
    }),
  );
});
