import test from "ava";
import fc from "fast-check";
import { LIMITS } from "@controlplane/config";
import { decodeBeat, HEARTBEAT_BODY } from "../src/routes/heartbeat.js";
import { decodeBody } from "../src/wire/body.js";

/** The outcome of a decoder: what it returned, or the status and message it refused with. */
function outcome(decode: () => unknown): unknown {
  try {
    const body = decode() as { runtime_id?: unknown; supports_batch_import?: unknown };
    return { runtime_id: body.runtime_id, supports_batch_import: body.supports_batch_import };
  } catch (error) {
    const refused = error as { statusCode?: number; message: string };
    return { refused: refused.statusCode, message: refused.message };
  }
}

const id = "0b7c2d9e-4c1f-4a55-9a3e-2f1d6c8b7a90";
const bodies = [
  `{"runtime_id":"${id}"}`,
  `{"runtime_id":"${id}","supports_batch_import":true}`,
  ` {"supports_batch_import":false,"runtime_id":"${id}","extra":[1,{"a":null}]} trailing`,
  `{"runtime_id":null,"supports_batch_import":null}`,
  "{}",
  "null",
  "",
  "[]",
  `"${id}"`,
  "42",
  `{"runtime_id":42}`,
  `{"runtime_id":"${id}","supports_batch_import":"yes"}`,
  `{"runtime_id":"${"x".repeat(LIMITS.NAME_CHARS)}"}`,
  `{"runtime_id":"${"x".repeat(LIMITS.NAME_CHARS + 1)}"}`,
  `{"runtime_id":"${"x".repeat(LIMITS.NAME_CHARS + 1)}","supports_batch_import":1}`,
  `{"runtime_id":"a\\u0000b"}`,
  `{"runtime_id":"\\ud800${id}"}`,
  `{"runtime_id":"${id}"`,
  `{"runtime_id":"${id}","runtime_id":7}`,
];

test("a beat's body decodes as the heartbeat schema decodes it, whichever path it takes", (t) => {
  for (const body of bodies) {
    t.deepEqual(
      outcome(() => decodeBeat(body)),
      outcome(() => decodeBody(body, HEARTBEAT_BODY)),
      body.slice(0, 80),
    );
  }
});

test("the common beat decodes to its two fields", (t) => {
  t.deepEqual(decodeBeat(`{"runtime_id":"${id}","supports_batch_import":true}`), { runtime_id: id, supports_batch_import: true });
  t.deepEqual(decodeBeat(`{"runtime_id":"${id}"}`), { runtime_id: id, supports_batch_import: undefined });
});

test("any body of JSON values decodes alike on both paths", (t) => {
  const field = fc.oneof(
    fc.string({ maxLength: LIMITS.NAME_CHARS + 2 }),
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.string({ unit: "binary", maxLength: 4 }),
  );
  fc.assert(
    fc.property(fc.record({ runtime_id: field, supports_batch_import: field, other: fc.jsonValue() }, { requiredKeys: [] }), (value) => {
      const body = JSON.stringify(value);
      t.deepEqual(
        outcome(() => decodeBeat(body)),
        outcome(() => decodeBody(body, HEARTBEAT_BODY)),
        body.slice(0, 80),
      );
    }),
  );
});
