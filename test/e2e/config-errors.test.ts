import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const LEVELS = "'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'";

interface Ended {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Starts a program's entry point as an operator would, with `env` on top of
 * this environment, and returns how it ended. Each of these must stop on its
 * configuration before it opens anything, so no database or port is needed.
 */
async function start(entry: string, env: Record<string, string>): Promise<Ended> {
  return run("node", ["--import", "tsx", entry], { cwd: ROOT, env: { ...process.env, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (failure: unknown) => failure as Ended,
  );
}

for (const entry of [
  "services/runtime-registry/src/main.ts",
  "services/gateway/src/main.ts",
  "services/task-queue/src/migrate.ts",
  "tools/all-in-one/src/main.ts",
]) {
  test(`${entry}: LOG_LEVEL=verbose stops it with one line naming LOG_LEVEL and the levels it takes`, async (t) => {
    const ended = await start(entry, { LOG_LEVEL: "verbose" });
    t.is(ended.code, 1);
    t.is(ended.stdout, "", "nothing logged: the logger is made from the checked level");
    t.is(ended.stderr, `invalid configuration: LOG_LEVEL: Invalid enum value. Expected ${LEVELS}, received 'verbose'\n`);
  });
}

test("a bad value next to a bad LOG_LEVEL is named in the same line", async (t) => {
  const ended = await start("services/liveness/src/main.ts", { LOG_LEVEL: "loud", LIVENESS_GRPC_PORT: "70000" });
  t.is(ended.code, 1);
  const [line, ...more] = ended.stderr.split("\n").filter(Boolean);
  t.deepEqual(more, []);
  t.regex(line ?? "", /^invalid configuration: /);
  t.regex(line ?? "", /LIVENESS_GRPC_PORT: /);
  t.regex(line ?? "", /LOG_LEVEL: .*received 'loud'/);
});
