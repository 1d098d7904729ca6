import test from "ava";
import fc from "fast-check";
import { InvalidArgumentError } from "@controlplane/grpc";
import { PROTOCOL_FAMILIES } from "../src/protocol-families.js";
import { MESSAGES, validateCreate, validateUpdate, type CreateInput } from "../src/validation.js";

const valid: CreateInput = { displayName: "n", protocolFamily: "claude", commandName: "c", fixedArgs: [], visibility: "" };

function messageOf(work: () => unknown): string | undefined {
  try {
    work();
    return undefined;
  } catch (error) {
    if (error instanceof InvalidArgumentError) return error.message;
    throw error;
  }
}

test("the whitelist message lists the families in contract order", (t) => {
  t.is(
    MESSAGES.unsupportedFamily,
    "unsupported protocol_family: must be one of claude, codebuddy, codex, copilot, opencode, openclaw, hermes, gemini, pi, cursor, kimi, kiro, antigravity",
  );
});

test("checks run in the contract's order: name, family, command, visibility, args", (t) => {
  t.is(
    messageOf(() => validateCreate({ ...valid, displayName: "", protocolFamily: "x", commandName: "" })),
    MESSAGES.displayNameRequired,
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, protocolFamily: "x", commandName: "" })),
    MESSAGES.unsupportedFamily,
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, commandName: " ", visibility: "bad" })),
    MESSAGES.commandNameRequired,
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, visibility: "bad", fixedArgs: [""] })),
    MESSAGES.badVisibility,
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, fixedArgs: ["a", "\t"] })),
    MESSAGES.blankFixedArg,
  );
});

test("property: a family is accepted exactly when it is whitelisted (after trimming)", (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.constantFrom(...PROTOCOL_FAMILIES), fc.string()), fc.constantFrom("", " ", "\t"), (family, pad) => {
      const accepted = messageOf(() => validateCreate({ ...valid, protocolFamily: pad + family + pad })) === undefined;
      return accepted === (PROTOCOL_FAMILIES as readonly string[]).includes(family.trim());
    }),
  );
  t.pass();
});

test("property: names are stored trimmed, fixed args exactly as sent", (t) => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1 }).filter((s) => s.trim() !== ""),
      fc.array(fc.string().filter((s) => s.trim() !== "")),
      (name, args) => {
        const draft = validateCreate({ ...valid, displayName: ` ${name} `, commandName: `${name}\n`, fixedArgs: args });
        return draft.displayName === name.trim() && draft.commandName === name.trim() && draft.fixedArgs === args;
      },
    ),
  );
  t.pass();
});

test("visibility: empty defaults on create but is rejected on update", (t) => {
  t.is(validateCreate({ ...valid, visibility: "  " }).visibility, "workspace");
  t.is(validateCreate({ ...valid, visibility: " private " }).visibility, "private");
  t.is(
    messageOf(() => validateUpdate({ visibility: "" })),
    MESSAGES.badVisibility,
  );
});

test("update only carries present fields", (t) => {
  t.deepEqual(validateUpdate({}), {});
  t.deepEqual(validateUpdate({ enabled: false, description: "" }), { enabled: false, description: "" });
  t.is(
    messageOf(() => validateUpdate({ displayName: " " })),
    MESSAGES.displayNameEmpty,
  );
  t.is(
    messageOf(() => validateUpdate({ commandName: "" })),
    MESSAGES.commandNameEmpty,
  );
});
