import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { ADVISORY_LOCK_CLASSES, ADVISORY_LOCKS } from "@controlplane/db";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TABLE = "libs/db/src/locks.ts";

/** Files under `dir` whose names end with `suffix`, skipping node_modules and generated code. */
function filesUnder(dir: string, suffix: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "proto") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...filesUnder(path, suffix));
    else if (name.endsWith(suffix)) found.push(path);
  }
  return found;
}

test("every advisory lock has a key of its own, and none falls in the claim's per-agent class", (t) => {
  const locks = Object.values(ADVISORY_LOCKS);
  const keys = locks.map((l) => `${l.classId}/${l.objId}`);
  t.is(new Set(keys).size, keys.length, "two locks share a key");
  t.is(new Set(locks.map((l) => l.name)).size, locks.length, "two locks share a name");
  const classes = Object.values(ADVISORY_LOCK_CLASSES);
  t.is(new Set(classes).size, classes.length, "two owners share a class");
  for (const lock of locks) {
    t.not(lock.classId, ADVISORY_LOCK_CLASSES.taskClaim, `${lock.name} is in the class whose every objId may be an agent's claim lock`);
    t.true(classes.includes(lock.classId as (typeof classes)[number]), `${lock.name}: class listed`);
    // int4 arguments of the two-key form.
    t.true(Number.isInteger(lock.classId) && Math.abs(lock.classId) < 2 ** 31 && Number.isInteger(lock.objId) && Math.abs(lock.objId) < 2 ** 31);
  }
});

test("no code takes an advisory lock except through the table", (t) => {
  const sources = ["libs", "services", "tools"].flatMap((dir) => filesUnder(join(ROOT, dir), ".ts")).filter((path) => path.includes("/src/"));
  const offenders = sources
    .filter((path) => relative(ROOT, path) !== TABLE)
    .filter((path) => /pg_(try_)?advisory/.test(readFileSync(path, "utf8")))
    .map((path) => relative(ROOT, path));
  t.deepEqual(offenders, [], "take locks with tryTransactionLock / trySessionLock and a key from ADVISORY_LOCKS");
});

test("advisory locks taken in SQL use a class the table reserves for them", (t) => {
  const migrations = filesUnder(join(ROOT, "services"), ".sql");
  const calls = migrations.flatMap((path) =>
    [...readFileSync(path, "utf8").matchAll(/pg_(?:try_)?advisory_(?:xact_)?lock\(\s*([^,)]+)\s*,/g)].map((m) => ({
      path: relative(ROOT, path),
      classId: m[1]!.trim(),
    })),
  );
  t.true(calls.length > 0, "the claim functions take per-agent locks");
  for (const call of calls) t.is(Number(call.classId), ADVISORY_LOCK_CLASSES.taskClaim, `${call.path}: class ${call.classId}`);
});
