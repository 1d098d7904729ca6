import { randomUUID } from "node:crypto";
import test from "ava";
import { encodeEvent, EventMeta } from "@controlplane/events";
import { LIMITS } from "@controlplane/config";
import { InvalidArgumentError } from "@controlplane/grpc";
import { FIXED_ARGS_TOTAL_CHARS, MESSAGES, validateCreate, validateUpdate, type CreateInput } from "../src/validation.js";

const valid: CreateInput = { displayName: "n", protocolFamily: "claude", commandName: "c", fixedArgs: [], visibility: "" };
const long = (n: number) => "x".repeat(n);

function messageOf(work: () => unknown): string | undefined {
  try {
    work();
    return undefined;
  } catch (error) {
    if (error instanceof InvalidArgumentError) return error.message;
    throw error;
  }
}

test("create: every stored string is bounded, at exactly its limit accepted", (t) => {
  const cases: Array<[Partial<CreateInput>, Partial<CreateInput>, string]> = [
    [{ displayName: long(LIMITS.NAME_CHARS) }, { displayName: long(LIMITS.NAME_CHARS + 1) }, MESSAGES.displayNameTooLong],
    [{ commandName: long(LIMITS.NAME_CHARS) }, { commandName: long(LIMITS.NAME_CHARS + 1) }, MESSAGES.commandNameTooLong],
    [{ description: long(LIMITS.DESCRIPTION_CHARS) }, { description: long(LIMITS.DESCRIPTION_CHARS + 1) }, MESSAGES.descriptionTooLong],
    [{ fixedArgs: Array(LIMITS.FIXED_ARGS).fill("a") }, { fixedArgs: Array(LIMITS.FIXED_ARGS + 1).fill("a") }, MESSAGES.tooManyFixedArgs],
    [{ fixedArgs: [long(LIMITS.PATH_CHARS)] }, { fixedArgs: ["a", long(LIMITS.PATH_CHARS + 1)] }, MESSAGES.fixedArgTooLong],
    [
      { fixedArgs: Array(FIXED_ARGS_TOTAL_CHARS / LIMITS.PATH_CHARS).fill(long(LIMITS.PATH_CHARS)) },
      { fixedArgs: [...Array(FIXED_ARGS_TOTAL_CHARS / LIMITS.PATH_CHARS).fill(long(LIMITS.PATH_CHARS)), "y"] },
      MESSAGES.fixedArgsTooLong,
    ],
  ];
  for (const [atLimit, overLimit, message] of cases) {
    t.is(
      messageOf(() => validateCreate({ ...valid, ...atLimit })),
      undefined,
      message,
    );
    t.is(
      messageOf(() => validateCreate({ ...valid, ...overLimit })),
      message,
    );
  }
  t.is(MESSAGES.descriptionTooLong, "description too long");
});

test("names are measured as stored: trimmed", (t) => {
  t.is(
    messageOf(() => validateCreate({ ...valid, displayName: `  ${long(LIMITS.NAME_CHARS)}  ` })),
    undefined,
  );
});

test("NUL in any stored string is refused, naming the field", (t) => {
  t.is(
    messageOf(() => validateCreate({ ...valid, displayName: "a\u0000b" })),
    "display_name must not contain NUL characters",
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, commandName: "a\u0000" })),
    "command_name must not contain NUL characters",
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, description: "\u0000" })),
    "description must not contain NUL characters",
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, fixedArgs: ["--x", "a\u0000b"] })),
    "fixed_args must not contain NUL characters",
  );
  t.is(
    messageOf(() => validateUpdate({ description: "x\u0000" })),
    "description must not contain NUL characters",
  );
});

test("the contract's checks keep their messages and order: bounds come after all of them", (t) => {
  const tooLong = long(LIMITS.NAME_CHARS + 1);
  t.is(
    messageOf(() => validateCreate({ ...valid, displayName: tooLong, protocolFamily: "x" })),
    MESSAGES.unsupportedFamily,
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, displayName: tooLong, commandName: " " })),
    MESSAGES.commandNameRequired,
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, description: "\u0000", visibility: "bad" })),
    MESSAGES.badVisibility,
  );
  t.is(
    messageOf(() => validateCreate({ ...valid, fixedArgs: [long(LIMITS.PATH_CHARS + 1), " "] })),
    MESSAGES.blankFixedArg,
  );
  t.is(
    messageOf(() => validateUpdate({ displayName: " ", description: long(LIMITS.DESCRIPTION_CHARS + 1) })),
    MESSAGES.displayNameEmpty,
  );
  t.is(
    messageOf(() => validateUpdate({ commandName: tooLong, visibility: "" })),
    MESSAGES.badVisibility,
  );
});

test("update bounds only the fields it changes", (t) => {
  t.is(
    messageOf(() => validateUpdate({ enabled: false })),
    undefined,
  );
  t.is(
    messageOf(() => validateUpdate({ commandName: long(LIMITS.NAME_CHARS + 1) })),
    MESSAGES.commandNameTooLong,
  );
  t.is(
    messageOf(() => validateUpdate({ fixedArgs: Array(LIMITS.FIXED_ARGS + 1).fill("a") })),
    MESSAGES.tooManyFixedArgs,
  );
});

test("the largest profile validation accepts encodes to an event well under the outbox's 512 KiB", (t) => {
  // The worst case per UTF-16 code unit in UTF-8 is 3 bytes (a BMP character outside ASCII).
  const wide = (n: number) => "\u4e2d".repeat(n);
  const draft = validateCreate({
    ...valid,
    displayName: wide(LIMITS.NAME_CHARS),
    commandName: wide(LIMITS.NAME_CHARS),
    description: wide(LIMITS.DESCRIPTION_CHARS),
    fixedArgs: Array(FIXED_ARGS_TOTAL_CHARS / LIMITS.PATH_CHARS).fill(wide(LIMITS.PATH_CHARS)),
  });
  const profile = {
    ...draft,
    description: draft.description ?? undefined,
    id: randomUUID(),
    workspaceId: randomUUID(),
    createdAt: new Date(),
    updatedAt: new Date(),
  };
  const meta = EventMeta.fromPartial({ eventId: randomUUID(), occurredAt: new Date(), workspaceId: profile.workspaceId });
  const bytes = encodeEvent("profile.created", { meta, profile }).length;
  t.true(bytes < 300 * 1024, `${bytes} bytes`);
});
