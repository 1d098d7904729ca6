import test from "ava";
import fc from "fast-check";
import { LIMITS } from "@controlplane/config";
import { decodeBeat, HEARTBEAT_BODY } from "../src/routes/heartbeat.js";
import { HeartbeatResponse } from "@controlplane/proto/liveness/v1/liveness";
import { deliversNothing, heartbeatAnswerJson } from "../src/shapes.js";
import { decodeBody } from "../src/wire/body.js";
import { goJson } from "../src/wire/go-json.js";

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
  // What may surround the value: JSON's whitespace, and text after it (the original read the first value only).
  const around = fc.constantFrom("", " ", "\n\t", "\r\n ", " trailing", "{", "[1]", ' {"runtime_id":"x"}');
  fc.assert(
    fc.property(
      fc.record({ runtime_id: field, supports_batch_import: field, other: fc.jsonValue() }, { requiredKeys: [] }),
      around,
      around,
      (value, before, after) => {
        const body = `${before.trim() === "" ? before : ""}${JSON.stringify(value)}${after}`;
        t.deepEqual(
          outcome(() => decodeBeat(body)),
          outcome(() => decodeBody(body, HEARTBEAT_BODY)),
          body.slice(0, 80),
        );
      },
    ),
  );
});

test("a beat's answer is sent as encoded once only when it delivers nothing, and then it is the same bytes", (t) => {
  const nothing = HeartbeatResponse.fromPartial({ workspaceId: "w" });
  t.true(deliversNothing(nothing));
  t.is(goJson(heartbeatAnswerJson(nothing)), '{"status":"ok"}\n');
  const action = { id: "a1", kind: 0, payloadJson: "" };
  for (const pending of [
    { pendingUpdate: action },
    { pendingModelList: action },
    { pendingLocalSkills: action },
    { pendingLocalSkillImport: action },
    { pendingLocalSkillImports: [action] },
  ]) {
    t.false(deliversNothing(HeartbeatResponse.fromPartial(pending)), Object.keys(pending)[0]);
  }
});
