{{/*
The Envoy bootstrap. Rendered into the Envoy ConfigMap, and (for the default
values) committed as deploy/envoy/envoy.yaml, which CI keeps identical to
this render and validates against Envoy's API (deploy/envoy/validate).

Listeners:
  https   (8443)  the front door: TLS, the daemon and user REST routes to the gateway
  grpc    (8081)  in-cluster only: internal gRPC routed by service name to its owner
  admin   (9902)  /ready for probes and /stats/prometheus for scraping (the
                  admin interface itself listens on loopback only)
*/}}
{{- define "controlplane.envoyConfig" -}}
{{- $e := .Values.envoy -}}
{{- $grpc := include "controlplane.grpcComponents" . | fromYaml -}}
{{- $gateway := include "controlplane.gatewayComponent" . | fromYaml -}}
{{- $reads := include "controlplane.idempotentRpcs" . | fromYamlArray -}}
{{- $maxDownstreamConnections := 50000 -}}
{{- /* The socket's idle timeout must outlast the gateway's ping interval and pong deadline, also when services.gateway.env changes them. */ -}}
{{- range $name := list "WS_PING_INTERVAL_MS" "WS_PONG_TIMEOUT_MS" }}
{{- with index $.Values.services.gateway.env $name }}
{{- if le (mul (int $e.timeouts.daemonSocketIdleSeconds) 1000) (int .) }}
{{- fail (printf "envoy.timeouts.daemonSocketIdleSeconds (%d s) must be above the gateway's %s (%v ms): Envoy would close live daemon sockets" (int $e.timeouts.daemonSocketIdleSeconds) $name .) }}
{{- end }}
{{- end }}
{{- end -}}
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 9901 }
layered_runtime:
  layers:
    - name: static
      static_layer:
        # Bounded downstream connections per Envoy (overload protection).
        overload.global_downstream_max_connections: {{ $maxDownstreamConnections }}
static_resources:
  listeners:
    - name: https
      address:
        socket_address: { address: 0.0.0.0, port_value: 8443 }
      per_connection_buffer_limit_bytes: 1048576
      filter_chains:
        - transport_socket:
            name: envoy.transport_sockets.tls
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
              common_tls_context:
                tls_params:
                  tls_minimum_protocol_version: TLSv1_2
                alpn_protocols: ["h2", "http/1.1"]
                tls_certificates:
                  - certificate_chain: { filename: /etc/envoy/tls/tls.crt }
                    private_key: { filename: /etc/envoy/tls/tls.key }
          filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: https
                codec_type: AUTO
                use_remote_address: true
                normalize_path: true
                merge_slashes: true
                path_with_escaped_slashes_action: REJECT_REQUEST
                max_request_headers_kb: {{ int $e.maxRequestHeadersKb }}
                request_timeout: 60s
                stream_idle_timeout: 60s
                # WebSocket upgrades are off by default and turned on per route: only the
                # daemon socket (route daemon-ws) takes one; an upgrade request on any other
                # route is refused (403, stat downstream_rq_ws_on_non_ws_route).
                upgrade_configs:
                  - upgrade_type: websocket
                    enabled: false
                common_http_protocol_options:
                  idle_timeout: {{ int $e.timeouts.idleSeconds }}s
                  headers_with_underscores_action: REJECT_REQUEST
                access_log:
                  {{- include "controlplane.envoyAccessLog" . | nindent 18 }}
                http_filters:
                  {{- if $e.rateLimit.enabled }}
                  # Declared here, enforced only where a route enables it (the daemon routes).
                  - name: envoy.filters.http.local_ratelimit
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      stat_prefix: daemon_rate_limit
                  {{- end }}
                  # Bodies above the limit answer 413 before reaching the gateway.
                  - name: envoy.filters.http.buffer
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
                      max_request_bytes: {{ int $e.maxRequestBytes }}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                local_reply_config:
                  # Envoy's own answers (413, 429, 503...) in the contract's error shape;
                  # a body over the limit gets the gateway's own text.
                  mappers:
                    - filter:
                        status_code_filter:
                          comparison:
                            op: EQ
                            value: { default_value: 413, runtime_key: local_reply.body_too_large }
                      body: { inline_string: "request body too large" }
                  body_format:
                    json_format:
                      error: "%LOCAL_REPLY_BODY%"
                    content_type: application/json
                route_config:
                  name: public
                  virtual_hosts:
                    - name: controlplane
                      domains: ["*"]
                      routes:
                        # The daemon socket: GET /api/daemon/ws?runtime_ids=... (contract §12). An
                        # exact path (the query string is not part of the match), first, before every
                        # broader /api/daemon/ route (daemon-reads would take this GET with a 15 s
                        # timeout and retries). Once the gateway answers 101 Envoy relays bytes:
                        #  - the upgrade is allowed on this route only (HTTP/1.1: the daemon's client
                        #    never offers WebSockets over HTTP/2);
                        #  - timeout 0s: no deadline (a socket lives for hours); the handshake is
                        #    bounded by the daemon's own 10 s dial timeout and by the idle timeout;
                        #  - idle_timeout replaces the listener's 60 s stream idle timeout here: the
                        #    gateway pings every 54 s and drops a socket 60 s after the last pong, so a
                        #    live socket is never this quiet; it only reaps sockets left open by a
                        #    gateway or daemon that vanished without closing them;
                        #  - never retried: the daemon redials on its own, with backoff;
                        #  - the buffer filter is off: it holds a request until its body ends, and an
                        #    upgraded request's body (the socket) never does. Frames are bounded by
                        #    the gateway (WS_MAX_FRAME_BYTES) and, in flight, by the listener's
                        #    per-connection buffer;
                        #  - rate-limited like the other daemon routes: the upgrade request takes one
                        #    token per connect (frames take none). A fleet redialling after a restart
                        #    is what the limit is there for, and a refused upgrade (429) costs a daemon
                        #    nothing: it keeps working over HTTP and redials after its backoff.
                        - name: daemon-ws
                          match:
                            path: /api/daemon/ws
                            headers:
                              - name: ":method"
                                string_match: { exact: GET }
                          route:
                            cluster: gateway
                            timeout: 0s
                            idle_timeout: {{ int $e.timeouts.daemonSocketIdleSeconds }}s
                            upgrade_configs:
                              - upgrade_type: websocket
                                enabled: true
                          typed_per_filter_config:
                            envoy.filters.http.buffer:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                              disabled: true
                            {{- if $e.rateLimit.enabled }}
                            {{- include "controlplane.envoyDaemonRateLimitConfig" . | nindent 28 }}
                            {{- end }}
                        # Claims hold a long-poll: a longer timeout, never retried (a claim hands out a task).
                        - name: daemon-claim
                          match:
                            safe_regex: { regex: "^/api/daemon/runtimes/[^/]+/tasks/claim$" }
                          route:
                            cluster: gateway
                            timeout: {{ int $e.timeouts.claimSeconds }}s
                          {{- include "controlplane.envoyDaemonRateLimit" . | nindent 26 }}
                        # Reads are safe to retry on another replica.
                        - name: daemon-reads
                          match:
                            prefix: /api/daemon/
                            headers:
                              - name: ":method"
                                string_match: { exact: GET }
                          route:
                            cluster: gateway
                            timeout: {{ int $e.timeouts.defaultSeconds }}s
                            retry_policy:
                              retry_on: connect-failure,refused-stream,reset
                              num_retries: {{ int $e.readRetries }}
                          {{- include "controlplane.envoyDaemonRateLimit" . | nindent 26 }}
                        - name: daemon
                          match: { prefix: /api/daemon/ }
                          route:
                            cluster: gateway
                            timeout: {{ int $e.timeouts.defaultSeconds }}s
                          {{- include "controlplane.envoyDaemonRateLimit" . | nindent 26 }}
                        - name: user-reads
                          match:
                            prefix: /api/
                            headers:
                              - name: ":method"
                                string_match: { exact: GET }
                          route:
                            cluster: gateway
                            timeout: {{ int $e.timeouts.defaultSeconds }}s
                            retry_policy:
                              retry_on: connect-failure,refused-stream,reset
                              num_retries: {{ int $e.readRetries }}
                        - name: user
                          match: { prefix: /api/ }
                          route:
                            cluster: gateway
                            timeout: {{ int $e.timeouts.defaultSeconds }}s
                        # Anything else is not ours: 404 at the edge.
                        - name: not-found
                          match: { prefix: / }
                          direct_response:
                            status: 404
                            body: { inline_string: "404 page not found\n" }

    - name: grpc
      address:
        socket_address: { address: 0.0.0.0, port_value: 8081 }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: grpc
                codec_type: HTTP2
                access_log:
                  {{- include "controlplane.envoyAccessLog" . | nindent 18 }}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                route_config:
                  name: internal-grpc
                  virtual_hosts:
                    - name: services
                      domains: ["*"]
                      routes:
                        # RPCs marked NO_SIDE_EFFECTS or IDEMPOTENT in proto/ are retried on UNAVAILABLE; nothing else is.
                        {{- range $reads }}
                        - name: {{ .path | quote }}
                          match: { path: {{ .path | quote }}, grpc: {} }
                          route:
                            cluster: {{ .cluster }}
                            timeout: {{ int $e.timeouts.defaultSeconds }}s
                            retry_policy:
                              retry_on: unavailable,connect-failure,refused-stream
                              num_retries: {{ int $e.readRetries }}
                        {{- end }}
                        # The claim may hold a long-poll.
                        - name: /controlplane.taskqueue.v1.TaskQueueService/ClaimTask
                          match: { path: /controlplane.taskqueue.v1.TaskQueueService/ClaimTask, grpc: {} }
                          route:
                            cluster: task-queue
                            timeout: {{ int $e.timeouts.claimSeconds }}s
                        {{- range $key, $c := $grpc }}
                        {{- range $c.grpcServices }}
                        - name: {{ printf "/%s/" . | quote }}
                          match: { prefix: {{ printf "/%s/" . | quote }}, grpc: {} }
                          route:
                            cluster: {{ $c.name }}
                            timeout: {{ int $e.timeouts.defaultSeconds }}s
                        {{- end }}
                        {{- end }}

    - name: admin
      address:
        socket_address: { address: 0.0.0.0, port_value: 9902 }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: admin_proxy
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                route_config:
                  name: admin
                  virtual_hosts:
                    - name: admin
                      domains: ["*"]
                      routes:
                        - match: { path: /ready }
                          route: { cluster: envoy-admin }
                        - match: { path: /stats/prometheus }
                          route: { cluster: envoy-admin }

  clusters:
    - name: gateway
      type: STRICT_DNS
      dns_lookup_family: V4_PREFERRED
      lb_policy: LEAST_REQUEST
      connect_timeout: 2s
      load_assignment:
        cluster_name: gateway
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address:
                      address: {{ include "controlplane.serviceHost" (dict "root" . "name" $gateway.name) }}
                      port_value: {{ $gateway.httpPort }}
      health_checks:
        - http_health_check: { path: /healthz }
          {{- include "controlplane.envoyHealthTiming" . | nindent 10 }}
      {{- include "controlplane.envoyOutlierDetection" . | nindent 6 }}
      # Each daemon socket holds an upstream HTTP/1.1 connection (and counts as a request)
      # for its whole life, on top of the calls in flight: the gateway may use as many
      # connections as Envoy accepts from downstream, lest a fleet's sockets use up the
      # connections and leave its claims and heartbeats queued.
      {{- include "controlplane.envoyCircuitBreakers" (dict "maxConnections" $maxDownstreamConnections) | nindent 6 }}
    {{- range $key, $c := $grpc }}
    - name: {{ $c.name }}
      type: STRICT_DNS
      dns_lookup_family: V4_PREFERRED
      lb_policy: LEAST_REQUEST
      connect_timeout: 2s
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options: {}
      load_assignment:
        cluster_name: {{ $c.name }}
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address:
                      address: {{ include "controlplane.serviceHost" (dict "root" $ "name" $c.name) }}
                      port_value: {{ $c.grpcPort }}
      health_checks:
        - grpc_health_check: { service_name: {{ first $c.grpcServices | quote }} }
          {{- include "controlplane.envoyHealthTiming" $ | nindent 10 }}
      {{- include "controlplane.envoyOutlierDetection" $ | nindent 6 }}
      {{- include "controlplane.envoyCircuitBreakers" (dict "maxConnections" 10000) | nindent 6 }}
    {{- end }}
    - name: envoy-admin
      type: STATIC
      connect_timeout: 1s
      load_assignment:
        cluster_name: envoy-admin
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: { address: 127.0.0.1, port_value: 9901 }
{{- end }}

{{- define "controlplane.envoyAccessLog" -}}
- name: envoy.access_loggers.stdout
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
    log_format:
      json_format:
        time: "%START_TIME%"
        method: "%REQ(:METHOD)%"
        path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
        status: "%RESPONSE_CODE%"
        grpc_status: "%GRPC_STATUS%"
        flags: "%RESPONSE_FLAGS%"
        duration_ms: "%DURATION%"
        upstream_ms: "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"
        bytes_in: "%BYTES_RECEIVED%"
        bytes_out: "%BYTES_SENT%"
        upstream: "%UPSTREAM_HOST%"
        route: "%ROUTE_NAME%"
        request_id: "%REQ(X-REQUEST-ID)%"
        client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
        user_agent: "%REQ(USER-AGENT)%"
{{- end }}

{{- define "controlplane.envoyDaemonRateLimit" -}}
{{- if .Values.envoy.rateLimit.enabled }}
typed_per_filter_config:
  {{- include "controlplane.envoyDaemonRateLimitConfig" . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The daemon routes' local rate limit, as one typed_per_filter_config entry. */}}
{{- define "controlplane.envoyDaemonRateLimitConfig" -}}
{{- $r := .Values.envoy.rateLimit -}}
envoy.filters.http.local_ratelimit:
  "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
  stat_prefix: daemon_rate_limit
  token_bucket:
    max_tokens: {{ add (int $r.requestsPerSecond) (int $r.burst) }}
    tokens_per_fill: {{ int $r.requestsPerSecond }}
    fill_interval: 1s
  filter_enabled:
    default_value: { numerator: 100, denominator: HUNDRED }
  filter_enforced:
    default_value: { numerator: 100, denominator: HUNDRED }
{{- end }}

{{- define "controlplane.envoyHealthTiming" -}}
{{- $h := .Values.envoy.healthCheck -}}
interval: {{ int $h.intervalSeconds }}s
timeout: {{ int $h.timeoutSeconds }}s
unhealthy_threshold: {{ int $h.unhealthyThreshold }}
healthy_threshold: {{ int $h.healthyThreshold }}
{{- end }}

{{- define "controlplane.envoyOutlierDetection" -}}
{{- $o := .Values.envoy.outlierDetection -}}
outlier_detection:
  consecutive_5xx: {{ int $o.consecutive5xx }}
  consecutive_gateway_failure: {{ int $o.consecutive5xx }}
  interval: 10s
  base_ejection_time: {{ int $o.baseEjectionSeconds }}s
  max_ejection_percent: {{ int $o.maxEjectionPercent }}
{{- end }}

{{/* (dict "maxConnections" N): the other thresholds are the same for every cluster. */}}
{{- define "controlplane.envoyCircuitBreakers" -}}
circuit_breakers:
  thresholds:
    # Far above normal load (a fleet's long-polls are the most requests in flight).
    - max_connections: {{ int .maxConnections }}
      max_pending_requests: 10000
      max_requests: 50000
      max_retries: 50
{{- end }}
