import { readdirSync, readFileSync } from "node:fs";
import test from "ava";
import { template, VALUE_SETS } from "./support/helm.js";

const FIXTURES = new URL("./fixtures/bad-values/", import.meta.url);

/** Each bad values file says, in its first line, what helm's schema check must name. */
const cases = readdirSync(FIXTURES)
  .filter((file) => file.endsWith(".yaml"))
  .map((file) => {
    const path = new URL(file, FIXTURES).pathname;
    const expected = /^# rejects: (.+)$/m.exec(readFileSync(path, "utf8"))?.[1];
    return { file, path, expected };
  });

test("there are bad values files to check", (t) => {
  t.true(cases.length >= 10);
  for (const { file, expected } of cases) t.truthy(expected, `${file} has no "# rejects:" line`);
});

for (const { file, path, expected } of cases) {
  test(`values.schema.json rejects ${file.replace(/\.yaml$/, "").replaceAll("-", " ")}`, (t) => {
    const result = template([path]);
    t.not(result.status, 0, "helm rendered it");
    t.regex(result.stderr, /values don't meet the specifications of the schema/);
    t.true(result.stderr.includes(expected ?? "\u0000"), `expected "${expected}" in:\n${result.stderr}`);
  });
}

for (const { name, files } of VALUE_SETS) {
  test(`values.schema.json accepts the ${name}`, (t) => {
    const result = template(files);
    t.is(result.status, 0, result.stderr);
  });
}
