import test from "ava";
import fc from "fast-check";
import { homeMask, redact, redactInput } from "../src/redact.js";

/** Redaction without the home directory step, so vectors do not depend on who runs them. */
const text = (input: string) => redact(input, undefined);

const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"; // 40 characters
const GH36 = "a".repeat(36);
const PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nline two\n-----END RSA PRIVATE KEY-----";
const JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fw";

/** [input, the original's output] for each pattern, in the original's order. */
const VECTORS: Array<[string, string, string]> = [
  // 1. AWS access key id, on word boundaries.
  ["aws key", "key AKIAIOSFODNN7EXAMPLE end", "key [REDACTED AWS KEY] end"],
  ["aws key glued to a word", "xAKIAIOSFODNN7EXAMPLE", "xAKIAIOSFODNN7EXAMPLE"],
  // 2. AWS secret: the name goes with the value.
  ["aws secret", `aws_secret_access_key = ${AWS_SECRET}`, "[REDACTED AWS SECRET]"],
  ["aws secret, any case, no underscores, glued", `MY_SecretAccessKey:${AWS_SECRET}!`, "MY_[REDACTED AWS SECRET]!"],
  ["aws secret, long-s folds to s as in RE2", `\u017Fecret_access_key=${AWS_SECRET}`, "[REDACTED AWS SECRET]"],
  // 3. PEM block, across lines; the algorithm name is optional.
  ["pem block", `before\n${PEM}\nafter`, "before\n[REDACTED PRIVATE KEY]\nafter"],
  ["pem block without a name", "-----BEGINPRIVATE KEY-----x-----ENDPRIVATE KEY-----", "[REDACTED PRIVATE KEY]"],
  // 4. GitHub tokens: 36 to 255 characters, ending on a word boundary.
  ["github token", `t=ghp_${GH36} x`, "t=[REDACTED GITHUB TOKEN] x"],
  ["github token too short", `ghs_${"a".repeat(35)}`, `ghs_${"a".repeat(35)}`],
  ["github token too long is left alone", `gho_${"a".repeat(256)}`, `gho_${"a".repeat(256)}`],
  // 5. sk- keys; a trailing hyphen is not part of the match.
  ["sk key", `use sk-${"b".repeat(20)} now`, "use [REDACTED API KEY] now"],
  ["sk key ending in a hyphen", `sk-${"b".repeat(20)}- x`, "[REDACTED API KEY]- x"],
  // 6. Slack.
  ["slack token", "xoxb-1234567890-abcdef", "[REDACTED SLACK TOKEN]"],
  ["slack token too short", "xoxp-123456789", "xoxp-123456789"],
  // 7. GitLab: 20 characters at least.
  ["gitlab token", `glpat-${"c".repeat(20)}`, "[REDACTED GITLAB TOKEN]"],
  ["gitlab token too short", `glpat-${"c".repeat(19)}`, `glpat-${"c".repeat(19)}`],
  // 8. JWT.
  ["jwt", `jwt ${JWT}.`, "jwt [REDACTED JWT]."],
  // 9. Bearer, any case; trailing padding stays outside the word boundary.
  ["bearer", "Authorization: bearer abc.def==", "Authorization: Bearer [REDACTED]=="],
  ["bearer with the Kelvin sign RE2 folds into the class", "Bearer a\u212Ab", "Bearer [REDACTED]"],
  // 10. Connection strings: scheme and credentials go together.
  ["connection string", "postgres://user:pw@db:5432/x", "[REDACTED CONNECTION STRING]@db:5432/x"],
  ["connection string, postgresql, glued", "xPOSTGRESQL://u:p@h", "x[REDACTED CONNECTION STRING]@h"],
  ["connection string, mongodb+srv is not covered", "mongodb+srv://u:p@h", "mongodb+srv://u:p@h"],
  ["connection string, rediss is not covered", "rediss://u:p@h", "rediss://u:p@h"],
  ["connection string without a password", "redis://cache:6379/0", "redis://cache:6379/0"],
  // 11. NAME=value: the whole assignment goes.
  ["credential", "export API_KEY=abc123", "export [REDACTED CREDENTIAL]"],
  ["credential with a colon, any case", "password: hunter2 rest", "[REDACTED CREDENTIAL] rest"],
  ["credential inside a longer name", "MY_TOKEN=x", "MY_[REDACTED CREDENTIAL]"],
  ["credential value on the next line", "TOKEN:\nnext line", "[REDACTED CREDENTIAL] line"],
  ["credential, quoted value with a space", "SECRET='a b'", "[REDACTED CREDENTIAL] b'"],
  // Order: earlier patterns run first, later ones see their labels.
  // (the credential's value ends at the first space, so the rest of a label stays).
  ["connection string inside a credential", "DATABASE_URL=postgres://u:pw@db/x", "[REDACTED CREDENTIAL] CONNECTION STRING]@db/x"],
  ["aws key inside a credential", "SECRET_KEY=AKIAIOSFODNN7EXAMPLE", "[REDACTED CREDENTIAL] AWS KEY]"],
  ["nothing to redact", "plain text: with = signs", "plain text: with = signs"],
];

for (const [name, input, output] of VECTORS) {
  test(`redact: ${name}`, (t) => {
    t.is(text(input), output);
  });
}

test("the home directory: the first occurrence of the user name in it is masked, everywhere", (t) => {
  t.deepEqual(homeMask("/home/ada", "ada"), ["/home/ada", "/home/****"]);
  t.is(redact("cd /home/ada/src && ls /home/ada", homeMask("/home/ada", "ada")), "cd /home/****/src && ls /home/****");
  // The original replaced the first occurrence, wherever it is.
  t.deepEqual(homeMask("/Users/s", "s"), ["/Users/s", "/U****ers/s"]);
  t.is(homeMask("", "ada"), undefined);
  t.is(homeMask("/home/ada", ""), undefined);
  // Secrets first, then the home directory.
  t.is(redact("TOKEN=/home/ada/x /home/ada", homeMask("/home/ada", "ada")), "[REDACTED CREDENTIAL] /home/****");
});

test("input: top-level strings are redacted, nested values and other types pass through", (t) => {
  const input = { command: "export API_KEY=abc", nested: { token: "TOKEN=x" }, list: ["TOKEN=y"], n: 1, ok: true, none: null };
  t.deepEqual(redactInput(input), { command: "export [REDACTED CREDENTIAL]", nested: { token: "TOKEN=x" }, list: ["TOKEN=y"], n: 1, ok: true, none: null });
  const proto = redactInput(JSON.parse('{"__proto__":"TOKEN=z"}') as Record<string, unknown>);
  t.deepEqual(Object.keys(proto), ["__proto__"], "a __proto__ key stays a key");
  t.is(JSON.stringify(proto), '{"__proto__":"[REDACTED CREDENTIAL]"}');
});

const word = fc.string({ unit: fc.constantFrom(..."abcdfhijlmnoquvwz "), maxLength: 12 });
const alnum = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"), minLength: min, maxLength: max });
const upperDigits = (n: number) => fc.string({ unit: fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), minLength: n, maxLength: n });

/** Secrets of every token shape, as they appear in agent output. */
const secret = fc.oneof(
  upperDigits(16).map((s) => `AKIA${s}`),
  alnum(36, 80).map((s) => `ghp_${s}`),
  alnum(20, 60).map((s) => `sk-${s}`),
  alnum(10, 40).map((s) => `xoxb-${s}`),
  alnum(20, 40).map((s) => `glpat-${s}`),
  fc.tuple(alnum(10, 20), alnum(10, 20), alnum(10, 20)).map(([a, b, c]) => `ey${a}.${b}.${c}`),
  alnum(1, 40).map((s) => `Bearer ${s}`),
  fc.tuple(fc.constantFrom("API_KEY", "password", "Db_Url", "TOKEN"), fc.constantFrom("=", ": ", " = "), alnum(1, 40)).map(([k, sep, v]) => `${k}${sep}${v}`),
);

test("property: a secret between ordinary words never survives redaction, even redacted twice", (t) => {
  fc.assert(
    fc.property(word, secret, word, (before, value, after) => {
      const once = text(`${before} ${value} ${after}`);
      t.false(once.includes(value), once);
      t.false(text(once).includes(value));
    }),
  );
});

test("property: a credential's value is gone with its name, whatever follows the sign", (t) => {
  fc.assert(
    fc.property(fc.constantFrom("API_KEY", "SECRET", "AUTH_TOKEN", "REDIS_URL"), alnum(8, 40), word, (name, value, after) => {
      const out = text(`export ${name}=${value} ${after}`);
      t.is(out, `export [REDACTED CREDENTIAL] ${after}`);
    }),
  );
});

test("property: text that cannot start any pattern comes back unchanged", (t) => {
  // No upper case, no "b", and none of = : - _ . / (every pattern needs one of them).
  const plain = fc.string({ unit: fc.constantFrom(..."acdefghijklmnopqrstuvwxyz0123456789 \n,;!?()"), maxLength: 60 });
  fc.assert(fc.property(plain, (s) => t.is(redact(s), s)));
});
