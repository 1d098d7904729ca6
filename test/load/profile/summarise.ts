/**
 * Summarises the .cpuprofile files cycle.ts left in a directory:
 *
 *   node --import tsx test/load/profile/summarise.ts <dir> [phase] [--top N] [--per-cycle UNITS]
 *
 * For each profile (one per process), only the samples inside the measured
 * window of `phase` (default "cycles") are counted, and idle time is left
 * out. Each sample is charged to an owner: the innermost frame that belongs
 * to a package or to our code, so time spent in Node's own streams, sockets
 * and parsers is charged to whoever asked for it (HTTP parsing, which has no
 * such caller, stays with Node's http module). Prints CPU by area (the
 * README's breakdown), by owner, and the heaviest functions by self time.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const dir = args[0];
if (!dir) throw new Error("usage: summarise.ts <profile-dir> [phase] [--top N] [--per-cycle UNITS]");
const phase = args[1] && !args[1].startsWith("--") ? args[1] : "cycles";
const option = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : undefined;
};
const top = option("--top") ?? 25;
const units = option("--per-cycle");

const meta = JSON.parse(readFileSync(join(dir, "windows.json"), "utf8")) as {
  windows: Record<string, { start: number; end: number }>;
  pids: Record<string, string>;
};
const window = meta.windows[phase];
if (!window) throw new Error(`no window "${phase}" in windows.json`);

/** The package, our module, or Node area a frame belongs to. */
function categoryOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName.startsWith("(")) return functionName;
    return "native";
  }
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith("node:"))
    return url
      .replace(/^node:(internal\/)?/, "node:")
      .split("/")
      .slice(0, 2)
      .join("/");
  const ours = /\/(libs|services|tools|test)\/([^/]+)\//.exec(url);
  if (ours) return `${ours[1]}/${ours[2]}`;
  return url;
}

/** Node internals and native code are charged to the nearest frame above them that is not. */
const isShared = (category: string) => category === "native" || category.startsWith("node:");

/** The README's areas. */
function areaOf(owner: string): string {
  const areas: Array<[RegExp, string]> = [
    [/^\(garbage collector\)$/, "GC"],
    [/^\((program|root)\)$/, "V8/runtime (program)"],
    [
      /^(fastify|find-my-way|avvio|light-my-request|@fastify\/.*|fast-json-stringify|fast-querystring|fast-uri|ret|safe-regex2|toad-cache|abstract-logging|secure-json-parse|content-type|proxy-addr|process-warning|rfdc|node:_http_.*|node:http|node:url|node:querystring|node:net|node:stream|node:streams)$/,
      "HTTP (fastify, node http)",
    ],
    [/^services\/gateway$/, "gateway code (routes, auth, wire shapes)"],
    [/^(@grpc\/.*|node:http2|node:http2\/.*|@bufbuild\/protobuf|libs\/proto|libs\/grpc|protobufjs|@protobufjs\/.*|long)$/, "gRPC (grpc-js, protobuf, our kit)"],
    [
      /^(slonik|pg|pg-.*|postgres-.*|libs\/db|@slonik\/.*|iso8601-duration|serialize-error|roarr|@types\/.*|p-limit|yocto-queue|strict-event-emitter-types|safe-stable-stringify|boolean|globalthis|fast-printf|semver|node:dns)$/,
      "Postgres client (slonik, pg, our pool)",
    ],
    [/^zod$/, "zod"],
    [/^(pino|pino-std-serializers|sonic-boom|thread-stream|on-exit-leak-free|atomic-sleep|quick-format-unescaped|fast-redact|libs\/log)$/, "logging (pino)"],
    [/^(@nats-io\/.*|nats|libs\/events)$/, "events (NATS)"],
    [/^(@opentelemetry\/.*|libs\/tracing)$/, "tracing"],
    [/^(libs\/cache|lru-cache)$/, "caches"],
    [/^(prom-client|tdigest|bintrees|libs\/metrics)$/, "metrics"],
    [/^services\/(task-queue|runtime-registry|liveness|profile-catalog)$/, "service code"],
    [/^(tsx|esbuild|get-tsconfig)$/, "tsx loader"],
  ];
  for (const [pattern, area] of areas) if (pattern.test(owner)) return area;
  return isShared(owner) ? `node internals (${owner})` : `other (${owner})`;
}

const byArea = new Map<string, number>();
const byOwner = new Map<string, number>();
const byFunction = new Map<string, number>();
let totalMicros = 0;
const add = (map: Map<string, number>, key: string, micros: number) => map.set(key, (map.get(key) ?? 0) + micros);

for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
  const pid = /\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(file)?.[1] ?? "";
  const processName = meta.pids[pid] ?? `pid ${pid}`;
  const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as Profile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  /** Owner of a sample at this leaf, memoised (many samples share a leaf). */
  const ownerCache = new Map<number, string>();
  const ownerOf = (leaf: number): string => {
    const cached = ownerCache.get(leaf);
    if (cached) return cached;
    const own = categoryOf(nodes.get(leaf)!.callFrame);
    let owner = own;
    if (isShared(own)) {
      for (let at = parent.get(leaf); at !== undefined; at = parent.get(at)) {
        const category = categoryOf(nodes.get(at)!.callFrame);
        if (!isShared(category) && !category.startsWith("(")) {
          owner = category;
          break;
        }
      }
    }
    ownerCache.set(leaf, owner);
    return owner;
  };
  let processMicros = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!;
    // A sample stands for the time until the next one.
    const weight = profile.timeDeltas[i + 1] ?? 0;
    if (at < window.start || at > window.end) continue;
    const node = nodes.get(profile.samples[i]!)!;
    if (node.callFrame.functionName === "(idle)") continue;
    const owner = ownerOf(node.id);
    processMicros += weight;
    add(byOwner, owner, weight);
    add(byArea, areaOf(owner), weight);
    const { functionName, url, lineNumber } = node.callFrame;
    add(
      byFunction,
      `${functionName || "(anonymous)"} ${url.replace(/^.*node_modules\//, "").replace(/^.*\/(libs|services)\//, "$1/")}:${lineNumber + 1}`,
      weight,
    );
  }
  totalMicros += processMicros;
  console.log(`${processName}: ${(processMicros / 1000).toFixed(0)} ms of CPU in the "${phase}" window`);
}

const print = (title: string, map: Map<string, number>, limit: number) => {
  console.log(`\n${title}`);
  for (const [key, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
    const share = ((100 * micros) / totalMicros).toFixed(1).padStart(5);
    const per = units ? `  ${(micros / 1000 / units).toFixed(3)} ms/unit` : "";
    console.log(`${share}%${per}  ${key}`);
  }
};
print("by area", byArea, 30);
print("by owner (innermost package or module of ours)", byOwner, top);
print("by function (self time)", byFunction, top);
