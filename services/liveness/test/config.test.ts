import test from "ava";
import { loadLivenessConfig, silenceWindowMs } from "../src/config.js";

test("the fleet-silence rule: five runtimes by default, a window the timing chain bounds on both sides", (t) => {
  const config = loadLivenessConfig({});
  t.is(config.SWEEP_SILENCE_MIN_FLEET, 5);
  const window = silenceWindowMs(config);
  // A beating fleet's newest beat reaches the pulse within a flush tick and a heartbeat...
  t.true(window > config.FLUSH_TICK_MS + config.HEARTBEAT_INTERVAL_MS);
  // ...and the silence is seen before the first runtime of a fleet falling silent together could be swept.
  t.true(window + config.HEARTBEAT_INTERVAL_MS <= config.STALE_THRESHOLD_MS - config.FLUSH_INTERVAL_MS);
});

test("a timing chain that leaves no room for the silence window is refused, naming the variables", (t) => {
  // 60 + 15 + 70 = 145 < 150 passes the flush chain, but 150 - 60 - 15 = 75 is not above 70 + 15.
  const error = t.throws(() => loadLivenessConfig({ FLUSH_TICK_MS: "70000" }));
  t.regex(
    error.message,
    /STALE_THRESHOLD_MS - FLUSH_INTERVAL_MS - HEARTBEAT_INTERVAL_MS \(75000\) must exceed FLUSH_TICK_MS \+ HEARTBEAT_INTERVAL_MS \(85000\)/,
  );
});

test("SWEEP_SILENCE_MIN_FLEET must be a positive count", (t) => {
  t.is(loadLivenessConfig({ SWEEP_SILENCE_MIN_FLEET: "12" }).SWEEP_SILENCE_MIN_FLEET, 12);
  t.throws(() => loadLivenessConfig({ SWEEP_SILENCE_MIN_FLEET: "0" }), { message: /SWEEP_SILENCE_MIN_FLEET/ });
});
