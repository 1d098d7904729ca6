/**
 * Exporters for tests and benchmarks (real SDK classes, no mocks):
 * `startTracing({ serviceName, exporter: new InMemorySpanExporter() })`.
 */
import type { ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";

export { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";

/** Takes every span and keeps none: the cost of recording spans, without a collector. */
export class DroppingSpanExporter implements SpanExporter {
  exported = 0;

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.exported += spans.length;
    done({ code: 0 });
  }

  async shutdown(): Promise<void> {}
}
