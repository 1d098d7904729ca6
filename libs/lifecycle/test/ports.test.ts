import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import test from "ava";
import { freePort } from "../src/ports.js";

const ephemeralStart = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);

test("freePort gives a port outside the ephemeral range that a server can then listen on, on every address", async (t) => {
  const port = await freePort();
  t.true(port >= 1024 && port < ephemeralStart, `${port} is below ${ephemeralStart}, where outgoing connections never take it`);
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, "0.0.0.0", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  t.not(await freePort(), port, "a port in use is not handed out");
});
