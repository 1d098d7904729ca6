import test from "ava";
import { ConfigMap, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { DAEMON_SOCKET_DRAIN_MS } from "@controlplane/config";
import { gatewayEnv } from "@controlplane/gateway/config";
import { livenessEnv } from "@controlplane/liveness/config";
import { profileCatalogEnv } from "@controlplane/profile-catalog/config";
import { registryEnv } from "@controlplane/runtime-registry/config";
import { taskQueueEnv } from "@controlplane/task-queue/config";
import { byKind, NAMESPACE, render, VALUE_SETS, type K8sObject } from "./support/helm.js";

/** The schema each rendered kind is checked against, offline. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
};

/** What each Deployment runs, and the env schema of that program. */
const PROGRAMS: Record<string, { entry: string; env: { shape: Record<string, unknown> } }> = {
  "runtime-registry": { entry: "services/runtime-registry/src/main.ts", env: registryEnv },
  "profile-catalog": { entry: "services/profile-catalog/src/main.ts", env: profileCatalogEnv },
  "task-queue": { entry: "services/task-queue/src/main.ts", env: taskQueueEnv },
  liveness: { entry: "services/liveness/src/main.ts", env: livenessEnv },
  gateway: { entry: "services/gateway/src/main.ts", env: gatewayEnv },
};

// biome-ignore lint/suspicious/noExplicitAny: the pod template of a Deployment or Job, read as data.
type PodSpec = any;
const podOf = (o: K8sObject): PodSpec => o.spec.template.spec;
const workloads = (objects: K8sObject[]) => objects.filter((o) => o.kind === "Deployment" || o.kind === "Job");
const component = (o: K8sObject) => o.metadata.labels?.["app.kubernetes.io/component"] ?? "";

for (const { name, files } of VALUE_SETS) {
  const objects = render(files);
  const deployments = byKind(objects, "Deployment");
  const services = byKind(objects, "Service");
  const configEnv = byKind(objects, "ConfigMap").find((o) => o.metadata.name.endsWith("-env"))!.data!;

  test(`${name}: every rendered object is valid against the Kubernetes schemas`, (t) => {
    t.true(objects.length > 20);
    for (const object of objects) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      if (!Model) {
        t.fail(`no schema to check ${object.apiVersion} ${object.kind} ${object.metadata.name} against`);
        continue;
      }
      t.notThrows(() => new Model(object as never).validate(), `${object.kind} ${object.metadata.name}`);
    }
  });

  test(`${name}: one Deployment per service, the gateway and Envoy, each running its own program`, (t) => {
    t.deepEqual(deployments.map(component).sort(), ["envoy", ...Object.keys(PROGRAMS)].sort());
    for (const deployment of deployments.filter((d) => component(d) !== "envoy")) {
      const container = podOf(deployment).containers[0];
      t.deepEqual(container.args, [PROGRAMS[component(deployment)]!.entry], deployment.metadata.name);
    }
  });

  test(`${name}: every container has probes, resources and a non-root, read-only security context`, (t) => {
    for (const workload of workloads(objects)) {
      const pod = podOf(workload);
      t.true(pod.securityContext?.runAsNonRoot, `${workload.metadata.name}: pod runAsNonRoot`);
      t.true(pod.securityContext?.runAsUser > 0, `${workload.metadata.name}: pod runs as a non-zero uid`);
      for (const container of pod.containers) {
        const where = `${workload.metadata.name}/${container.name}`;
        if (workload.kind === "Deployment") {
          for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) t.truthy(container[probe], `${where}: ${probe}`);
        }
        t.truthy(container.resources?.requests?.cpu, `${where}: cpu request`);
        t.truthy(container.resources?.requests?.memory, `${where}: memory request`);
        t.truthy(container.resources?.limits?.memory, `${where}: memory limit`);
        t.like(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true }, where);
        t.deepEqual(container.securityContext.capabilities?.drop, ["ALL"], where);
      }
    }
  });

  test(`${name}: gRPC services are probed natively, readiness on the service they serve`, (t) => {
    for (const deployment of deployments.filter((d) => !["gateway", "envoy"].includes(component(d)))) {
      const container = podOf(deployment).containers[0];
      const port = container.ports.find((p: { name: string }) => p.name === "grpc").containerPort;
      t.is(container.readinessProbe.grpc?.port, port, deployment.metadata.name);
      t.regex(container.readinessProbe.grpc.service, /^controlplane\.[a-z]+\.v1\.[A-Za-z]+Service$/);
      t.is(container.livenessProbe.grpc?.port, port);
      t.is(container.livenessProbe.grpc.service, undefined, "liveness asks for the whole process");
    }
  });

  test(`${name}: every Service selects the pods of a Deployment, on ports its containers declare`, (t) => {
    for (const service of services) {
      const selector = service.spec.selector as Record<string, string>;
      const target = deployments.find((d) => Object.entries(selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
      t.truthy(target, `${service.metadata.name} selects no Deployment's pods`);
      if (!target) continue;
      const declared = podOf(target).containers.flatMap((c: { ports: Array<{ name: string; containerPort: number }> }) => c.ports);
      for (const port of service.spec.ports) {
        const match = declared.find((p: { name: string; containerPort: number }) => p.name === port.targetPort || p.containerPort === port.targetPort);
        t.truthy(match, `${service.metadata.name}: port ${port.name} targets ${port.targetPort}, which ${target.metadata.name} does not declare`);
      }
    }
  });

  test(`${name}: autoscalers and disruption budgets point at Deployments; autoscaled ones leave replicas to the HPA`, (t) => {
    for (const hpa of byKind(objects, "HorizontalPodAutoscaler")) {
      const target = deployments.find((d) => d.metadata.name === hpa.spec.scaleTargetRef.name);
      t.truthy(target, hpa.metadata.name);
      t.is(target?.spec.replicas, undefined, `${hpa.metadata.name}: the Deployment must not also set replicas`);
      t.true(hpa.spec.minReplicas <= hpa.spec.maxReplicas);
    }
    for (const pdb of byKind(objects, "PodDisruptionBudget")) {
      const selector = pdb.spec.selector.matchLabels as Record<string, string>;
      t.truthy(
        deployments.find((d) => Object.entries(selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v)),
        pdb.metadata.name,
      );
      t.truthy(pdb.spec.maxUnavailable, `${pdb.metadata.name}: maxUnavailable keeps node drains possible`);
    }
  });

  test(`${name}: termination grace covers the preStop pause and the service's own drain (the gateway's: HTTP, then its daemon sockets)`, (t) => {
    const drainSeconds = Number(configEnv.SHUTDOWN_GRACE_MS) / 1000;
    t.true(drainSeconds > 0);
    for (const deployment of deployments) {
      const pod = podOf(deployment);
      const preStop = Number(pod.containers[0].lifecycle.preStop.exec.command[1]);
      const drain =
        {
          envoy: 0,
          // On SIGTERM the gateway also closes its daemon sockets (1001) and waits for the close handshakes.
          gateway: drainSeconds + DAEMON_SOCKET_DRAIN_MS / 1000,
        }[component(deployment)] ?? drainSeconds;
      t.true(
        pod.terminationGracePeriodSeconds > preStop + drain,
        `${deployment.metadata.name}: ${pod.terminationGracePeriodSeconds} s <= ${preStop} + ${drain} s`,
      );
    }
    const gateway = deployments.find((d) => component(d) === "gateway")!;
    const other = deployments.find((d) => component(d) === "task-queue")!;
    t.true(
      podOf(gateway).terminationGracePeriodSeconds - podOf(other).terminationGracePeriodSeconds >= DAEMON_SOCKET_DRAIN_MS / 1000,
      "the gateway's grace has room for its socket drain on top of what every service gets",
    );
  });

  test(`${name}: every variable the chart sets is one its program reads`, (t) => {
    for (const deployment of deployments.filter((d) => component(d) !== "envoy")) {
      const known = PROGRAMS[component(deployment)]!.env.shape;
      const set = [...podOf(deployment).containers[0].env.map((e: { name: string }) => e.name), ...Object.keys(configEnv)];
      // The gateway shares the ConfigMap but has no database and no stream: it ignores those keys.
      const relevant =
        component(deployment) === "gateway"
          ? set.filter((n) => !["EVENTS_STREAM", "DB_POOL_SIZE", "DB_PREPARED_STATEMENTS", "MIGRATE_ON_START"].includes(n))
          : set;
      const unknown = relevant.filter((n) => !(n in known));
      t.deepEqual(unknown, [], `${deployment.metadata.name} is given variables it does not read`);
    }
  });

  test(`${name}: every program is given the NATS connection it needs (the gateway: for its daemon sockets)`, (t) => {
    for (const deployment of deployments.filter((d) => component(d) !== "envoy")) {
      const env = podOf(deployment).containers[0].env.map((e: { name: string }) => e.name);
      t.true(env.includes("NATS_URL"), `${deployment.metadata.name} has NATS_URL`);
      t.true("EVENTS_SUBJECT_ROOT" in configEnv, "the subject root comes from the shared ConfigMap");
    }
  });

  test(`${name}: every service finds every other over dns:/// on a Service the chart renders`, (t) => {
    const hosts = new Map(services.map((s) => [`${s.metadata.name}.${NAMESPACE}.svc.cluster.local`, s]));
    for (const deployment of deployments.filter((d) => component(d) !== "envoy")) {
      const env = podOf(deployment).containers[0].env as Array<{ name: string; value?: string }>;
      const addresses = env.filter((e) => e.name.endsWith("_GRPC_ADDR"));
      const read = Object.keys(PROGRAMS[component(deployment)]!.env.shape).filter((n) => n.endsWith("_GRPC_ADDR"));
      t.deepEqual(addresses.map((a) => a.name).sort(), read.sort(), `${deployment.metadata.name}: every peer it calls`);
      for (const { name: variable, value } of addresses) {
        const match = /^dns:\/\/\/([^:]+):(\d+)$/.exec(value ?? "");
        t.truthy(match, `${variable}=${value}`);
        const service = hosts.get(match![1]!);
        t.truthy(service, `${variable} names no rendered Service`);
        t.is(service?.spec.clusterIP, "None", `${variable}: headless, so clients see every replica`);
        t.true(
          service?.spec.ports.some((p: { port: number }) => p.port === Number(match![2])),
          `${variable}: port`,
        );
      }
    }
  });

  test(`${name}: migrations run as a pre-install/pre-upgrade hook and the services do not migrate`, (t) => {
    const [job] = byKind(objects, "Job");
    t.like(job?.metadata.annotations, { "helm.sh/hook": "pre-install,pre-upgrade" });
    t.deepEqual(podOf(job!).containers[0].args, ["tools/all-in-one/src/migrate.ts"]);
    t.is(configEnv.MIGRATE_ON_START, "false");
    // Whatever the Job reads from a Secret exists before it runs: an existing Secret, or a hook made first.
    for (const ref of podOf(job!).containers[0].env.filter((e: { valueFrom?: unknown }) => e.valueFrom)) {
      const secretName = ref.valueFrom.secretKeyRef.name;
      const made = byKind(objects, "Secret").find((s) => s.metadata.name === secretName);
      if (made) t.true(Number(made.metadata.annotations?.["helm.sh/hook-weight"]) < 0, `${secretName} is made before the Job`);
    }
  });
}

test("connection secrets: values land in the chart's Secret; existing Secrets are referenced, never copied", (t) => {
  const own = render();
  const secret = byKind(own, "Secret")[0]!;
  t.deepEqual(Object.keys(secret.stringData!).sort(), ["DATABASE_URL", "NATS_URL"], "no JWT secret set: none stored");
  const production = render(VALUE_SETS[1]!.files);
  t.deepEqual(byKind(production, "Secret"), [], "every secret is an existing one");
  const registry = byKind(production, "Deployment").find((d) => component(d) === "runtime-registry")!;
  const jwt = podOf(registry).containers[0].env.find((e: { name: string }) => e.name === "JWT_SECRET");
  t.deepEqual(jwt.valueFrom.secretKeyRef, { name: "controlplane-connections", key: "JWT_SECRET" });
});

test("one replica of everything by default, and the ServiceMonitor only when asked", (t) => {
  const objects = render();
  const deployments = byKind(objects, "Deployment");
  t.is(deployments.length, 6);
  for (const deployment of deployments) t.is(deployment.spec.replicas, 1, deployment.metadata.name);
  t.deepEqual(byKind(objects, "HorizontalPodAutoscaler"), []);
  t.deepEqual(byKind(objects, "ServiceMonitor"), []);
  const monitors = byKind(render(VALUE_SETS[1]!.files), "ServiceMonitor");
  t.is(monitors.length, 1);
  // Our programs' service="<name>" label is kept, not renamed exported_service.
  const ours = monitors[0]!.spec.endpoints.find((e: { port: string }) => e.port === "metrics");
  t.is(ours.honorLabels, true);
});

test("replicas and autoscaling follow the values", (t) => {
  const objects = render([], ["services.liveness.replicas=3", "services.gateway.autoscaling.enabled=true", "services.gateway.autoscaling.maxReplicas=12"]);
  const deployment = (name: string) => byKind(objects, "Deployment").find((d) => component(d) === name)!;
  t.is(deployment("liveness").spec.replicas, 3);
  t.is(deployment("gateway").spec.replicas, undefined);
  t.like(byKind(objects, "HorizontalPodAutoscaler").find((h) => component(h) === "gateway")?.spec, { maxReplicas: 12 });
});
