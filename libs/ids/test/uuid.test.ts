import test from "ava";
import fc from "fast-check";
import { parseUuid } from "@controlplane/ids";

test("hyphenated and bare 32-hex forms parse to the canonical lower-case form", (t) => {
  t.is(parseUuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  t.is(parseUuid("a0eebc999c0b4ef8bb6d6bb9bd380a11"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
});

test("anything else is not a UUID", (t) => {
  for (const input of ["", "nope", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", " a0eebc999c0b4ef8bb6d6bb9bd380a11"]) {
    t.is(parseUuid(input), null, input);
  }
});

test("property: every UUID round-trips in both forms, any case", (t) => {
  fc.assert(
    fc.property(fc.uuid(), fc.boolean(), (uuid, upper) => {
      const cased = upper ? uuid.toUpperCase() : uuid;
      return parseUuid(cased) === uuid.toLowerCase() && parseUuid(cased.replaceAll("-", "")) === uuid.toLowerCase();
    }),
  );
  t.pass();
});
