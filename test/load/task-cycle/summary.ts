import type * as hdr from "hdr-histogram-js";
import type { BeatResult } from "./beats.js";
import type { CycleResult } from "./cycles.js";
import type { DispatchResult } from "./dispatch.js";
import type { FloorResult } from "./floor.js";
import { SERVICES, type Shape } from "./plane.js";

/** What one round measured of one shape. */
export interface ShapeRound {
  cycles: CycleResult;
  /** Gateway cycles/s over the ceiling measured in the same round. */
  ofCeiling: number;
  beats: BeatResult;
  socket: DispatchResult;
  longPoll: DispatchResult;
  polling: DispatchResult;
}

export interface Round {
  /** The ceiling with prepared statements, as the services run them: the one the target is measured against. */
  ceiling: number;
  /** The same with unnamed statements, parsed and planned on every run (for reference). */
  ceilingUnnamed: number;
  shapes: Partial<Record<Shape, ShapeRound>>;
  /** (d) What a bare HTTP server costs for the same requests, at the all-in-one's cycle rate and the heartbeat rate. */
  floor?: FloorResult;
}

/** The issue's targets. */
export const TARGETS = {
  allInOneCpuPerCycleMs: 3,
  ofCeiling: 0.5,
  perServiceCyclesPerSecond: 300,
  allInOneCpuPerBeatMs: 0.2,
} as const;

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const pct = (h: hdr.Histogram, p: number) => (h.totalCount === 0 ? NaN : h.getValueAtPercentile(p) / 1000);

/** A figure with as many digits as it deserves. */
export function fmt(value: number, unit = ""): string {
  if (!Number.isFinite(value)) return "-";
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
  return `${value.toFixed(digits)}${unit}`;
}

/** One round's line, printed as it ends (the summary takes the medians of these). */
export function roundLine(index: number, round: Round): string {
  const parts = [`round ${index + 1}: ceiling ${fmt(round.ceiling)}/s (unnamed statements ${fmt(round.ceilingUnnamed)}/s)`];
  if (round.floor) parts.push(`HTTP floor ${fmt(round.floor.cycleCpuMs)} ms CPU/cycle, ${fmt(round.floor.beatCpuMs)} ms CPU/beat`);
  for (const [shape, r] of Object.entries(round.shapes)) {
    parts.push(
      `${shape}: ${fmt(r.cycles.perSecond)} cycles/s (${fmt(r.ofCeiling)} of ceiling), ${fmt(r.cycles.cpuMs.plane)} ms CPU/cycle, ` +
        `${fmt(r.beats.cpuMs)} ms CPU/beat at ${fmt(r.beats.perSecond)} beats/s, dispatch p50 socket ${fmt(pct(r.socket.latency, 50))} / ` +
        `long-poll ${fmt(pct(r.longPoll.latency, 50))} / polling ${fmt(pct(r.polling.latency, 50))} ms`,
    );
  }
  return parts.join("; ");
}

export interface SummaryContext {
  rounds: Round[];
  daemons: number;
  cyclesPerShape: number;
  rawConnections: number;
  beatRuntimes: number;
  beatRate: number;
  beatMs: number;
  beatWarmupMs: number;
  pollIntervalMs: number;
  pollers: number;
  samples: number;
}

/** The summary table: medians over the rounds, each target next to its figure. */
export function summaryLines(ctx: SummaryContext): string[] {
  const { rounds } = ctx;
  const of = (shape: Shape, pick: (r: ShapeRound) => number) => median(rounds.flatMap((round) => (round.shapes[shape] ? [pick(round.shapes[shape]!)] : [])));
  const both = (pick: (r: ShapeRound) => number) => [of("all-in-one", pick), of("per-service", pick)] as const;
  const verdict = (ok: boolean) => (ok ? "met" : "not met");
  const rows: Array<[string, string, string, string, string]> = [];
  const row = (measure: string, values: readonly [string, string], target = "", met = "") => rows.push([measure, values[0], values[1], target, met]);
  const ms = (values: readonly [number, number]) => [fmt(values[0], " ms"), fmt(values[1], " ms")] as const;

  const rate = both((r) => r.cycles.perSecond);
  const ceiling = median(rounds.map((r) => r.ceiling));
  const ofCeiling = both((r) => r.ofCeiling);
  const cpu = both((r) => r.cycles.cpuMs.plane);
  const beatCpu = both((r) => r.beats.cpuMs);
  row(
    "cycles/s through the gateway (claim -> start -> complete)",
    [fmt(rate[0]), fmt(rate[1])],
    `(b) >= ${TARGETS.perServiceCyclesPerSecond}`,
    verdict(rate[1] >= TARGETS.perServiceCyclesPerSecond),
  );
  row(`(c) raw SQL ceiling, cycles/s (${ctx.rawConnections} pg connections, prepared statements)`, [fmt(ceiling), ""]);
  row("    the same, unnamed statements (parsed and planned every run)", [fmt(median(rounds.map((r) => r.ceilingUnnamed))), ""]);
  row(
    "gateway cycles/s over the ceiling (same round)",
    [fmt(ofCeiling[0]), fmt(ofCeiling[1])],
    `>= ${TARGETS.ofCeiling}`,
    `(a) ${verdict(ofCeiling[0] >= TARGETS.ofCeiling)}, (b) ${verdict(ofCeiling[1] >= TARGETS.ofCeiling)}`,
  );
  row("control-plane CPU per cycle", ms(cpu), `(a) <= ${TARGETS.allInOneCpuPerCycleMs} ms`, verdict(cpu[0] <= TARGETS.allInOneCpuPerCycleMs));
  row("  by process", ["", SERVICES.map((name, i) => `${name} ${fmt(of("per-service", (r) => r.cycles.cpuMs.byProcess[i] ?? NaN))}`).join(", ")]);
  const floor = (pick: (f: FloorResult) => number) => median(rounds.flatMap((r) => (r.floor ? [pick(r.floor)] : [])));
  row("  (d) HTTP floor: bare fastify, recorded answers, at (a)'s rate", [
    fmt(
      floor((f) => f.cycleCpuMs),
      " ms",
    ),
    "",
  ]);
  row("Postgres CPU per cycle", ms(both((r) => r.cycles.cpuMs.postgres)));
  row("load generator CPU per cycle", ms(both((r) => r.cycles.cpuMs.generator)));
  row("claim p50 / p99 under load", [
    `${fmt(of("all-in-one", (r) => r.cycles.claimP50Ms))} / ${fmt(
      of("all-in-one", (r) => r.cycles.claimP99Ms),
      " ms",
    )}`,
    `${fmt(of("per-service", (r) => r.cycles.claimP50Ms))} / ${fmt(
      of("per-service", (r) => r.cycles.claimP99Ms),
      " ms",
    )}`,
  ]);
  row("control-plane CPU per HTTP heartbeat", ms(beatCpu), `(a) <= ${TARGETS.allInOneCpuPerBeatMs} ms`, verdict(beatCpu[0] <= TARGETS.allInOneCpuPerBeatMs));
  row("  by process", ["", SERVICES.map((name, i) => `${name} ${fmt(of("per-service", (r) => r.beats.byProcess[i] ?? NaN))}`).join(", ")]);
  row("  (d) HTTP floor: bare fastify, recorded answer, same rate", [
    fmt(
      floor((f) => f.beatCpuMs),
      " ms",
    ),
    "",
  ]);
  const beatRate = both((r) => r.beats.perSecond);
  row(
    `  beats/s achieved (of ${ctx.beatRate}); beat p50 / p99`,
    [0, 1].map((i) => {
      const shape: Shape = i === 0 ? "all-in-one" : "per-service";
      const unanswered = rounds.reduce(
        (sum, round) => sum + (round.shapes[shape] ? round.shapes[shape]!.beats.failed + round.shapes[shape]!.beats.missed : 0),
        0,
      );
      return (
        `${fmt(beatRate[i]!)}; ${fmt(of(shape, (r) => r.beats.p50Ms))} / ${fmt(
          of(shape, (r) => r.beats.p99Ms),
          " ms",
        )}` + (unanswered > 0 ? ` (${unanswered} failed or not sent, all rounds)` : "")
      );
    }) as [string, string],
  );
  const latency = (name: string, pick: (r: ShapeRound) => DispatchResult) => {
    const text = (shape: Shape) =>
      `${fmt(of(shape, (r) => pct(pick(r).latency, 50)))} / ${fmt(
        of(shape, (r) => pct(pick(r).latency, 99)),
        " ms",
      )}` + `${of(shape, (r) => pick(r).lost) > 0 ? ` (${of(shape, (r) => pick(r).lost)} lost)` : ""}`;
    row(name, [text("all-in-one"), text("per-service")]);
  };
  latency("dispatch p50 / p99, idle daemon on the socket", (r) => r.socket);
  latency("dispatch p50 / p99, idle daemon on long-poll", (r) => r.longPoll);
  latency(`dispatch p50 / p99, polling every P = ${ctx.pollIntervalMs} ms (${ctx.pollers} daemons)`, (r) => r.polling);
  const P = ctx.pollIntervalMs;
  row(
    "  polling in P: p50, max (about uniform over [0, P) plus a claim)",
    [0, 1].map((i) => {
      const shape: Shape = i === 0 ? "all-in-one" : "per-service";
      const p50 = of(shape, (r) => pct(r.polling.latency, 50));
      // What is over P / 2 (the enqueue call, the claim) does not grow with P.
      const at30s = 15 + (p50 - P / 2) / 1000;
      return `${fmt(p50 / P)} P, ${fmt(of(shape, (r) => r.polling.latency.maxValue / 1000) / P)} P (p50 about ${fmt(at30s, " s")} at the daemon's 30 s)`;
    }) as [string, string],
  );

  const widths = [0, 1, 2, 3, 4].map((c) =>
    Math.max(...rows.map((r) => r[c]!.length), ["measure", "(a) all in one", "(b) one process per service", "target", "met"][c]!.length),
  );
  const line = (cells: string[]) => `| ${cells.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")} |`;
  return [
    `medians of ${rounds.length} round(s), shapes alternating; ${ctx.daemons} daemons of the original's shape (a runtime and an agent each), ` +
      `${ctx.cyclesPerShape} cycles per shape and round; heartbeats: ${ctx.beatRuntimes} runtimes at ${ctx.beatRate} beats/s in all, ` +
      `measured ${ctx.beatMs} ms after a pass over every runtime and ${ctx.beatWarmupMs} ms more; ` +
      `dispatch: ${ctx.samples} samples per way; CPU from /proc (2 cores = 2,000 ms of CPU per second)`,
    line(["measure", "(a) all in one", "(b) one process per service", "target", "met"]),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ];
}
