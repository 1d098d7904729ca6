import test from "ava";
import { counter, gauge, histogram, setServiceLabel, startMetricsServer } from "@controlplane/metrics";

test("every sample served carries the service label, process metrics and metrics made before the call included", async (t) => {
  const plain = counter({ name: "label_test_plain_total", help: "no labels of its own", labelNames: [] });
  plain.inc();
  const labelled = counter({ name: "label_test_labelled_total", help: "labels of its own", labelNames: ["outcome"] as const });
  labelled.inc({ outcome: "ok" });
  setServiceLabel("label-test");
  gauge({ name: "label_test_gauge", help: "made after the call", labelNames: [] }).set(3);
  histogram({ name: "label_test_seconds", help: "buckets too", labelNames: [] }).observe(0.01);

  const server = await startMetricsServer(0, "127.0.0.1");
  t.teardown(server.close);
  const body = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  const samples = body.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
  t.true(
    samples.some((line) => line.startsWith("process_cpu_seconds_total")),
    "default process metrics are served",
  );
  for (const line of samples) t.regex(line, /[{,]service="label-test"[,}]/, line);
  t.true(samples.includes('label_test_labelled_total{outcome="ok",service="label-test"} 1'));
  t.true(samples.includes('label_test_plain_total{service="label-test"} 1'));
});
