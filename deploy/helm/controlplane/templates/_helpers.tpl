{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "controlplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped base name of every object. */}}
{{- define "controlplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "controlplane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: {{ include "controlplane.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "liveness"). */}}
{{- define "controlplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "controlplane.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "controlplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "controlplane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "controlplane.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
The gRPC services, as the software defines them (not tunable): the values
key, the object name, the entry point, the ports and the env variables that
carry them, and the gRPC services each serves (routed by Envoy, probed by
Kubernetes).
*/}}
{{- define "controlplane.grpcComponents" -}}
runtimeRegistry:
  name: runtime-registry
  entry: services/runtime-registry/src/main.ts
  grpcPort: 50051
  metricsPort: 9091
  portEnv: REGISTRY_GRPC_PORT
  metricsEnv: REGISTRY_METRICS_PORT
  addrEnv: REGISTRY_GRPC_ADDR
  calls: [profileCatalog]
  grpcServices:
    - controlplane.registry.v1.IdentityService
    - controlplane.registry.v1.RuntimeRegistryService
profileCatalog:
  name: profile-catalog
  entry: services/profile-catalog/src/main.ts
  grpcPort: 50052
  metricsPort: 9092
  portEnv: PROFILE_CATALOG_GRPC_PORT
  metricsEnv: PROFILE_CATALOG_METRICS_PORT
  addrEnv: PROFILE_CATALOG_GRPC_ADDR
  calls: [runtimeRegistry]
  grpcServices:
    - controlplane.profiles.v1.ProfileCatalogService
taskQueue:
  name: task-queue
  entry: services/task-queue/src/main.ts
  grpcPort: 50053
  metricsPort: 9093
  portEnv: TASK_QUEUE_GRPC_PORT
  metricsEnv: TASK_QUEUE_METRICS_PORT
  addrEnv: TASK_QUEUE_GRPC_ADDR
  calls: [runtimeRegistry, liveness]
  grpcServices:
    - controlplane.taskqueue.v1.TaskQueueService
liveness:
  name: liveness
  entry: services/liveness/src/main.ts
  grpcPort: 50054
  metricsPort: 9094
  portEnv: LIVENESS_GRPC_PORT
  metricsEnv: LIVENESS_METRICS_PORT
  addrEnv: LIVENESS_GRPC_ADDR
  calls: [runtimeRegistry]
  grpcServices:
    - controlplane.liveness.v1.LivenessService
{{- end }}

{{/*
The gateway: HTTP, not gRPC. On SIGTERM it also closes its daemon sockets
(close 1001) and waits up to socketDrainSeconds for the close handshakes:
DAEMON_SOCKET_DRAIN_MS (libs/config/src/timing.ts) in whole seconds, rounded
up; deploy/test checks the two agree through the termination grace.
*/}}
{{- define "controlplane.gatewayComponent" -}}
name: gateway
entry: services/gateway/src/main.ts
httpPort: 8080
metricsPort: 9090
socketDrainSeconds: 2
calls: [runtimeRegistry, profileCatalog, taskQueue, liveness]
{{- end }}

{{/* In-cluster DNS name of a component's (headless) Service. */}}
{{- define "controlplane.serviceHost" -}}
{{ include "controlplane.fullname" .root }}-{{ .name }}.{{ .root.Release.Namespace }}.svc.{{ .root.Values.clusterDomain }}
{{- end }}

{{/*
gRPC addresses of the services a component calls: (dict "root" $ "calls" list).
dns:/// with a headless Service lets grpc-js balance calls over every
replica (round robin); the servers cap connection age so new replicas are found.
*/}}
{{- define "controlplane.grpcAddressEnv" -}}
{{- $all := include "controlplane.grpcComponents" .root | fromYaml }}
{{- range .calls }}
{{- $c := index $all . }}
- name: {{ $c.addrEnv }}
  value: "dns:///{{ include "controlplane.serviceHost" (dict "root" $.root "name" $c.name) }}:{{ $c.grpcPort }}"
{{- end }}
{{- end }}

{{/* Secret-backed env: (dict "root" $ "env" "DATABASE_URL" "ref" .Values.database). */}}
{{- define "controlplane.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.existingSecret | default (printf "%s-connections" (include "controlplane.fullname" .root)) }}
      key: {{ .ref.existingSecretKey | default .env }}
{{- end }}

{{/* Pod-level security: never root, default seccomp. */}}
{{- define "controlplane.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .runAsUser }}
runAsGroup: {{ int .runAsUser }}
fsGroup: {{ int .runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "controlplane.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/*
The RPCs marked `idempotency_level = NO_SIDE_EFFECTS` or `IDEMPOTENT` in
proto/, with the cluster that serves them: the only internal calls Envoy
retries. files/retryable-rpcs.yaml is generated from proto/ by `npm run gen`
(the gRPC clients read the same levels); the cluster is the component that
lists the RPC's service in grpcServices.
*/}}
{{- define "controlplane.idempotentRpcs" -}}
{{- $grpc := include "controlplane.grpcComponents" . | fromYaml }}
{{- range $path := .Files.Get "files/retryable-rpcs.yaml" | fromYamlArray }}
{{- $service := index (splitList "/" $path) 1 }}
{{- range $c := $grpc }}
{{- if has $service $c.grpcServices }}
- { path: {{ $path }}, cluster: {{ $c.name }} }
{{- end }}
{{- end }}
{{- end }}
{{- end }}
