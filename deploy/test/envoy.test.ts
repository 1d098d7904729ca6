import { readdirSync, readFileSync } from "node:fs";
import test from "ava";
import { stringify } from "yaml";
import {
  CLAIM_ANSWER_SLACK_MS,
  CLAIM_LONG_POLL_MAX_MS,
  DAEMON_HTTP_TIMEOUT_MS,
  DAEMON_SOCKET_PING_INTERVAL_MS,
  DAEMON_SOCKET_PONG_TIMEOUT_MS,
  GATEWAY_GRPC_DEADLINE_MS,
  loadConfig,
} from "@controlplane/config";
import { gatewayEnv } from "@controlplane/gateway/config";
import { durationMs, envoyConfigText, parseEnvoy, routesOf, validateEnvoy, type EnvoyBootstrap } from "./support/envoy.js";
import { byKind, NAMESPACE, render, ROOT, template, VALUE_SETS } from "./support/helm.js";

const COMMITTED = readFileSync(`${ROOT}deploy/envoy/envoy.yaml`, "utf8");

/** Every gRPC service declared in proto/, with its RPCs and which of them are marked NO_SIDE_EFFECTS or IDEMPOTENT (retryable). */
function protoServices() {
  const services: Array<{ fullName: string; rpcs: string[]; reads: string[] }> = [];
  const root = `${ROOT}proto/controlplane/`;
  for (const domain of readdirSync(root)) {
    for (const file of readdirSync(`${root}${domain}/v1`).filter((f) => f.endsWith(".proto"))) {
      const text = readFileSync(`${root}${domain}/v1/${file}`, "utf8");
      const pkg = /^package ([\w.]+);/m.exec(text)![1];
      for (const match of text.matchAll(/^service (\w+) \{([\s\S]*?)^\}/gm)) {
        const body = match[2]!;
        const rpcs = [...body.matchAll(/rpc (\w+)\(/g)].map((m) => m[1]!);
        const reads = [...body.matchAll(/rpc (\w+)\([^)]*\) returns \([^)]*\)\s*\{([^}]*)\}/g)]
          .filter((m) => /idempotency_level = (NO_SIDE_EFFECTS|IDEMPOTENT);/.test(m[2]!))
          .map((m) => m[1]!);
        services.push({ fullName: `${pkg}.${match[1]}`, rpcs, reads });
      }
    }
  }
  return services;
}

/** Which service folder serves each gRPC service, read from the code that registers it (`.add(XServiceService, ...)`). */
function servedBy(): Map<string, string> {
  const owners = new Map<string, string>();
  for (const folder of readdirSync(`${ROOT}services`)) {
    let source: string;
    try {
      source = readFileSync(`${ROOT}services/${folder}/src/service.ts`, "utf8");
    } catch {
      continue;
    }
    for (const [, name] of source.matchAll(/\.add\(\s*(\w+)Service,/g)) owners.set(name!, folder);
  }
  return owners;
}

const clustersOf = (bootstrap: EnvoyBootstrap) => bootstrap.static_resources.clusters as EnvoyBootstrap[];
const clusterHost = (cluster: EnvoyBootstrap) => cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
const httpsManager = (bootstrap: EnvoyBootstrap) =>
  bootstrap.static_resources.listeners.find((l: EnvoyBootstrap) => l.name === "https").filter_chains[0].filters[0].typed_config;

/** The daemon socket's route (GET /api/daemon/ws): the one route without a request timeout. */
const SOCKET_ROUTE = "daemon-ws";
const SOCKET_PATH = "/api/daemon/ws";

/** Whether a route's match could take a request for `path` (prefix, exact path or regex). */
function couldMatch(match: EnvoyBootstrap, path: string): boolean {
  if (match.prefix !== undefined) return path.startsWith(match.prefix);
  if (match.path !== undefined) return match.path === path;
  if (match.safe_regex !== undefined) return new RegExp(match.safe_regex.regex).test(path);
  throw new Error(`a match this test does not know: ${JSON.stringify(match)}`);
}

test("deploy/envoy/envoy.yaml is exactly what the chart renders with its default values", (t) => {
  const rendered = envoyConfigText(render());
  const body = COMMITTED.split("\n")
    .filter((line) => !line.startsWith("# "))
    .join("\n");
  t.is(body, rendered, "run `npm run deploy:envoy` after changing the chart's Envoy template");
});

test("the committed Envoy config and the production render pass Envoy's own API validation", (t) => {
  for (const [name, text] of [
    ["deploy/envoy/envoy.yaml", COMMITTED],
    ["production values", envoyConfigText(render(VALUE_SETS[1]!.files))],
  ] as const) {
    const result = validateEnvoy(text);
    t.true(result.ok, `${name}:\n${result.output}`);
  }
});

test("the validator is not a rubber stamp: unknown fields, bad values inside typed_config and dangling clusters fail", (t) => {
  const broken: Array<[string, (b: EnvoyBootstrap) => void, RegExp]> = [
    ["an unknown field", (b) => (b.static_resources.listeners[0].per_connection_buffer_limit = 1), /unknown field/],
    [
      "a zero body limit in the buffer filter",
      (b) => {
        const hcm = b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
        hcm.http_filters.find((f: EnvoyBootstrap) => f.name === "envoy.filters.http.buffer").typed_config.max_request_bytes = 0;
      },
      /MaxRequestBytes: value must be greater than 0/,
    ],
    ["a route to a cluster that does not exist", (b) => (routesOf(b).find((r) => r.route.route)!.route.route.cluster = "nowhere"), /unknown cluster "nowhere"/],
    ["a negative connect timeout", (b) => (clustersOf(b)[0].connect_timeout = "-1s"), /ConnectTimeout: value must be greater than 0s/],
    [
      "a per-route buffer override that neither disables nor replaces the filter",
      (b) => delete routesOf(b).find((r) => r.route.name === SOCKET_ROUTE)!.route.typed_per_filter_config["envoy.filters.http.buffer"].disabled,
      /Override: value is required/,
    ],
  ];
  for (const [what, breakIt, expected] of broken) {
    const bootstrap = parseEnvoy(COMMITTED);
    breakIt(bootstrap);
    const result = validateEnvoy(stringify(bootstrap));
    t.false(result.ok, what);
    t.regex(result.output, expected, what);
  }
});

for (const { name, files } of VALUE_SETS) {
  const objects = render(files);
  const bootstrap = parseEnvoy(envoyConfigText(objects));
  const routes = routesOf(bootstrap);
  const services = byKind(objects, "Service");

  test(`${name}: every cluster points at a Service the chart renders, on a port it exposes`, (t) => {
    for (const cluster of clustersOf(bootstrap)) {
      const { address, port_value: port } = clusterHost(cluster);
      if (cluster.name === "envoy-admin") {
        t.is(address, "127.0.0.1", "the admin interface stays on loopback");
        continue;
      }
      const service = services.find((s) => `${s.metadata.name}.${NAMESPACE}.svc.cluster.local` === address);
      t.truthy(service, `cluster ${cluster.name}: ${address} is not a rendered Service`);
      t.true(
        service?.spec.ports.some((p: { port: number }) => p.port === port),
        `cluster ${cluster.name}: port ${port}`,
      );
      t.is(service?.spec.clusterIP, "None", `cluster ${cluster.name}: headless, so Envoy balances per request`);
      t.truthy(cluster.health_checks?.length, `cluster ${cluster.name}: health checked`);
      t.truthy(cluster.outlier_detection, `cluster ${cluster.name}: outlier detection`);
    }
  });

  test(`${name}: every gRPC service in proto/ is routed, over HTTP/2, to the service that serves it`, (t) => {
    const owners = servedBy();
    const grpcRoutes = routes.filter((r) => r.listener === "grpc");
    const protos = protoServices();
    t.true(protos.length >= 5);
    for (const { fullName } of protos) {
      const owner = owners.get(fullName.split(".").at(-1)!);
      t.truthy(owner, `${fullName}: no service registers it`);
      const route = grpcRoutes.find((r) => r.route.match.prefix === `/${fullName}/`);
      t.truthy(route, `${fullName}: no route`);
      t.is(route?.route.route.cluster, owner, `${fullName} goes to ${owner}`);
      const cluster = clustersOf(bootstrap).find((c) => c.name === owner);
      t.truthy(
        cluster?.typed_extension_protocol_options?.["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]?.explicit_http_config?.http2_protocol_options,
      );
      const health = cluster?.health_checks[0].grpc_health_check.service_name;
      t.true(protos.some((p) => p.fullName === health) && owners.get(health.split(".").at(-1)) === owner, `${owner}: health-checks a service it serves`);
    }
  });

  test(`${name}: only retryable calls are retried (NO_SIDE_EFFECTS or IDEMPOTENT RPCs, GET routes)`, (t) => {
    const reads = protoServices()
      .flatMap((s) => s.reads.map((rpc) => `/${s.fullName}/${rpc}`))
      .sort();
    t.true(reads.length > 10);
    const retriedGrpc = routes
      .filter((r) => r.listener === "grpc" && r.route.route?.retry_policy)
      .map((r) => r.route.match.path)
      .sort();
    t.deepEqual(retriedGrpc, reads);
    for (const { route } of routes.filter((r) => r.listener === "https" && r.route.route?.retry_policy)) {
      t.deepEqual(route.match.headers, [{ name: ":method", string_match: { exact: "GET" } }], `${route.name} retries something else than GET`);
    }
  });

  test(`${name}: claims may outlast the long-poll hold, every route answers before the daemon gives up`, (t) => {
    const claimRoutes = routes.filter((r) => r.route.name === "daemon-claim" || r.route.match.path === "/controlplane.taskqueue.v1.TaskQueueService/ClaimTask");
    t.is(claimRoutes.length, 2);
    // The daemon socket has no request timeout (it lives for hours; its own test bounds it): the one exemption.
    const exempt = routes.filter((r) => r.listener === "https" && r.route.name === SOCKET_ROUTE);
    t.is(exempt.length, 1);
    for (const { route } of routes.filter((r) => r.listener !== "admin" && r.route.route && !exempt.includes(r))) {
      const timeout = durationMs(route.route.timeout);
      t.true(timeout < DAEMON_HTTP_TIMEOUT_MS, `${route.name}: ${timeout} ms`);
      if (claimRoutes.some((c) => c.route === route)) t.true(timeout > CLAIM_LONG_POLL_MAX_MS + CLAIM_ANSWER_SLACK_MS, `${route.name}: ${timeout} ms`);
      else t.true(timeout > GATEWAY_GRPC_DEADLINE_MS, `${route.name}: ${timeout} ms`);
    }
  });

  test(`${name}: the front door terminates TLS with the mounted Secret, limits bodies as the gateway does, rate-limits daemons, logs JSON`, (t) => {
    const https = bootstrap.static_resources.listeners.find((l: EnvoyBootstrap) => l.name === "https");
    const chain = https.filter_chains[0];
    const cert = chain.transport_socket.typed_config.common_tls_context.tls_certificates[0];
    const envoy = byKind(objects, "Deployment").find((d) => d.metadata.name.endsWith("-envoy"))!;
    const tlsMount = envoy.spec.template.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === "tls");
    t.is(cert.certificate_chain.filename, `${tlsMount.mountPath}/tls.crt`);
    t.is(cert.private_key.filename, `${tlsMount.mountPath}/tls.key`);
    const hcm = chain.filters[0].typed_config;
    const buffer = hcm.http_filters.find((f: EnvoyBootstrap) => f.name === "envoy.filters.http.buffer");
    t.is(buffer.typed_config.max_request_bytes, loadConfig(gatewayEnv, {}).BODY_LIMIT_BYTES);
    // Envoy answers an oversized body itself: with the text the gateway would have used.
    const tooLarge = hcm.local_reply_config.mappers.find((m: EnvoyBootstrap) => m.filter.status_code_filter?.comparison.value.default_value === 413);
    t.regex(readFileSync(`${ROOT}services/gateway/src/wire/too-large.ts`, "utf8"), new RegExp(`sendError\\(reply, 413, "${tooLarge.body.inline_string}"`));
    // Every route to the daemon paths, the socket's upgrade request included (one token per connect).
    const daemonRoutes = routes.filter((r) => r.listener === "https" && r.route.name?.startsWith("daemon"));
    t.deepEqual(
      daemonRoutes.map((r) => r.route.name),
      [SOCKET_ROUTE, "daemon-claim", "daemon-reads", "daemon"],
    );
    for (const { route } of daemonRoutes) {
      t.truthy(route.typed_per_filter_config?.["envoy.filters.http.local_ratelimit"]?.token_bucket, `${route.name} is rate limited`);
    }
    for (const listener of bootstrap.static_resources.listeners.filter((l: EnvoyBootstrap) => l.name !== "admin")) {
      const log = listener.filter_chains[0].filters[0].typed_config.access_log[0];
      t.truthy(log.typed_config.log_format.json_format, `${listener.name} logs JSON`);
    }
  });

  test(`${name}: the daemon socket has its own route: first, upgraded, no timeout, idle above the pings, never retried, unbuffered`, (t) => {
    const https = routes.filter((r) => r.listener === "https").map((r) => r.route);
    const index = https.findIndex((r) => r.name === SOCKET_ROUTE);
    t.true(index >= 0, "no route for the daemon socket");
    const socket = https[index];
    // An exact path, which Envoy compares with the path stripped of its query: ?runtime_ids=... passes.
    t.deepEqual(socket.match, { path: SOCKET_PATH, headers: [{ name: ":method", string_match: { exact: "GET" } }] });
    // Before every route that would also take it (daemon-reads would give it 15 s and retries).
    const broader = https.filter((r, i) => i !== index && couldMatch(r.match, SOCKET_PATH));
    t.true(broader.some((r) => r.name === "daemon-reads") && broader.some((r) => r.name === "daemon"));
    for (const route of broader) t.true(https.indexOf(route) > index, `${route.name} comes before ${SOCKET_ROUTE}`);
    t.is(socket.route.cluster, "gateway");

    // WebSocket upgrades: off on the listener, on for this route and no other.
    const hcm = httpsManager(bootstrap);
    t.deepEqual(hcm.upgrade_configs, [{ upgrade_type: "websocket", enabled: false }]);
    t.deepEqual(socket.route.upgrade_configs, [{ upgrade_type: "websocket", enabled: true }]);
    for (const route of https.filter((r) => r !== socket)) t.is(route.route?.upgrade_configs, undefined, route.name);

    // No request timeout (0s disables it); the idle timeout outlasts the gateway's pings and its pong deadline.
    t.is(socket.route.timeout, "0s");
    t.is(durationMs(socket.route.timeout), 0);
    const idle = durationMs(socket.route.idle_timeout);
    t.true(idle > DAEMON_SOCKET_PING_INTERVAL_MS, `idle timeout ${idle} ms <= ping interval`);
    t.true(idle > DAEMON_SOCKET_PONG_TIMEOUT_MS, `idle timeout ${idle} ms <= pong deadline`);
    t.true(durationMs(hcm.stream_idle_timeout) <= DAEMON_SOCKET_PONG_TIMEOUT_MS, "the listener's own stream idle timeout would not do: hence the route's");

    // Never retried, neither by the route nor by its virtual host.
    t.is(socket.route.retry_policy, undefined);
    t.is(socket.route.hedge_policy, undefined);
    t.is(hcm.route_config.virtual_hosts[0].retry_policy, undefined);

    // The buffer filter would hold the upgrade until a body end that never comes: off here, on everywhere else.
    t.deepEqual(socket.typed_per_filter_config["envoy.filters.http.buffer"], {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
      disabled: true,
    });
    for (const route of https.filter((r) => r !== socket)) t.is(route.typed_per_filter_config?.["envoy.filters.http.buffer"], undefined, route.name);
    // Every per-route filter config names a filter the listener runs.
    const filters = hcm.http_filters.map((f: EnvoyBootstrap) => f.name);
    for (const route of https) {
      for (const key of Object.keys(route.typed_per_filter_config ?? {})) t.true(filters.includes(key), `${route.name}: ${key} is not in the filter chain`);
    }
  });

  test(`${name}: the gateway cluster can hold a socket on every downstream connection and still take calls`, (t) => {
    const layer = bootstrap.layered_runtime.layers.find((l: EnvoyBootstrap) => l.name === "static").static_layer;
    const downstream = layer["overload.global_downstream_max_connections"];
    t.true(downstream > 0);
    const gateway = clustersOf(bootstrap).find((c) => c.name === "gateway");
    // HTTP/1.1 upstream (the WebSocket upgrade is an HTTP/1.1 one): one request per connection, a socket pins its own.
    t.is(gateway.typed_extension_protocol_options, undefined);
    const [limits] = gateway.circuit_breakers.thresholds;
    t.true(limits.max_connections >= downstream, `max_connections ${limits.max_connections} < ${downstream} downstream connections`);
    t.true(limits.max_requests >= downstream, `max_requests ${limits.max_requests} < ${downstream} downstream connections`);
  });

  test(`${name}: Envoy keeps serving through the longest claim before it stops; its drain does too`, (t) => {
    const envoy = byKind(objects, "Deployment").find((d) => d.metadata.name.endsWith("-envoy"))!;
    const pod = envoy.spec.template.spec;
    const container = pod.containers[0];
    const claimMs = durationMs(routes.find((r) => r.route.name === "daemon-claim")!.route.route.timeout);
    const preStopMs = Number(container.lifecycle.preStop.exec.command[1]) * 1000;
    const drainMs = Number(container.args[container.args.indexOf("--drain-time-s") + 1]) * 1000;
    t.true(preStopMs >= claimMs, `preStop ${preStopMs} ms < claim timeout ${claimMs} ms`);
    t.true(drainMs >= claimMs, `--drain-time-s ${drainMs} ms < claim timeout ${claimMs} ms`);
    t.true(pod.terminationGracePeriodSeconds * 1000 > preStopMs, "SIGTERM comes after the pause, within the grace period");
  });

  test(`${name}: Envoy's listeners are the ports its Deployment and Services expose, and probes hit /ready`, (t) => {
    const envoy = byKind(objects, "Deployment").find((d) => d.metadata.name.endsWith("-envoy"))!;
    const container = envoy.spec.template.spec.containers[0];
    const ports = new Map(container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    const listenerPorts = new Map(bootstrap.static_resources.listeners.map((l: EnvoyBootstrap) => [l.name, l.address.socket_address.port_value]));
    t.is(ports.get("https"), listenerPorts.get("https"));
    t.is(ports.get("grpc"), listenerPorts.get("grpc"));
    t.is(ports.get("envoy-admin"), listenerPorts.get("admin"));
    t.like(container.readinessProbe.httpGet, { path: "/ready", port: "envoy-admin" });
    t.true(routes.some((r) => r.listener === "admin" && r.route.match.path === "/ready" && r.route.route.cluster === "envoy-admin"));
    const mounted = envoy.spec.template.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === "config");
    t.deepEqual(container.args.slice(0, 2), ["--config-path", mounted.mountPath]);
  });
}

test("the chart refuses a socket idle timeout that the gateway's ping interval or pong deadline reaches", (t) => {
  for (const variable of ["WS_PING_INTERVAL_MS", "WS_PONG_TIMEOUT_MS"]) {
    const refused = template([], [`services.gateway.env.${variable}=180000`]);
    t.not(refused.status, 0, `${variable}=180000 rendered`);
    t.true(refused.stderr.includes(`envoy.timeouts.daemonSocketIdleSeconds (180 s) must be above the gateway's ${variable}`), refused.stderr);
    const accepted = template([], [`services.gateway.env.${variable}=179000`]);
    t.is(accepted.status, 0, accepted.stderr);
  }
});
