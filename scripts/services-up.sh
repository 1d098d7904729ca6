#!/usr/bin/env bash
# Makes sure Postgres (127.0.0.1:5432, trust on loopback) and NATS with
# JetStream (127.0.0.1:4222) answer, starting them on a Debian machine if not.
set -euo pipefail
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! up 5432; then
  command -v pg_ctlcluster >/dev/null || { echo "Postgres is not installed (apt-get install postgresql)" >&2; exit 1; }
  version=$(pg_lsclusters -h | awk 'NR==1{print $1}')
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 50); do up 5432 && break; sleep 0.2; done
fi
if ! up 4222; then
  command -v nats-server >/dev/null || { echo "nats-server is not installed (apt-get install nats-server)" >&2; exit 1; }
  mkdir -p /tmp/nats-js
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/nats-js >/tmp/nats-server.log 2>&1 &
  for _ in $(seq 50); do up 4222 && break; sleep 0.1; done
fi
up 5432 || { echo "Postgres does not answer on 127.0.0.1:5432" >&2; exit 1; }
up 4222 || { echo "NATS does not answer on 127.0.0.1:4222" >&2; exit 1; }
echo "Postgres on 127.0.0.1:5432 and NATS on 127.0.0.1:4222 answer"
