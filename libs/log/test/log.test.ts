import { Writable } from "node:stream";
import test from "ava";
import { createLogger, redactUrl, tokenPrefix } from "@controlplane/log";

test("tokens and authorization headers never reach a log line", (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const log = createLogger("test", "info", sink);
  log.info({ token: "mul_secret", request: { headers: { authorization: "Bearer mdt_secret" } }, authorization: "Bearer x" }, "hello");
  t.is(lines.length, 1);
  t.false(lines[0]!.includes("secret"));
  t.true(lines[0]!.includes("[redacted]"));
});

test("helpers keep only what is safe to print", (t) => {
  t.is(tokenPrefix("mul_0123456789abcdef"), "mul_0123…");
  t.is(redactUrl("postgres://user:hunter2@db:5432/x"), "postgres://user:****@db:5432/x");
});
