import test from "ava";
import { generateToken, randomHex, TOKEN_PREFIX } from "../src/index.js";

test("a token is its prefix and 40 lower-case hex digits", (t) => {
  for (const prefix of Object.values(TOKEN_PREFIX)) t.regex(generateToken(prefix), new RegExp(`^${prefix}[0-9a-f]{40}$`));
});

test("tokens never repeat, across many refills of the random pool", (t) => {
  // 20 bytes each from a 4 KiB pool: 10,000 tokens span about 50 refills.
  const tokens = Array.from({ length: 10_000 }, () => generateToken(TOKEN_PREFIX.task));
  t.is(new Set(tokens).size, tokens.length);
});

test("randomHex gives as many bytes as asked, from the pool or, past its size, on their own", (t) => {
  for (const bytes of [1, 16, 20, 4096, 4097, 10_000]) t.regex(randomHex(bytes), new RegExp(`^[0-9a-f]{${2 * bytes}}$`), String(bytes));
  t.not(randomHex(4097), randomHex(4097));
});
