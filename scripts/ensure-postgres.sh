#!/usr/bin/env bash
# Make sure the local PostgreSQL server answers on 127.0.0.1:5432, starting it if needed.
set -euo pipefail
host=${LRLAB_PG_HOST:-127.0.0.1}
port=${LRLAB_PG_PORT:-5432}
if pg_isready -q -h "$host" -p "$port"; then exit 0; fi
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting PostgreSQL $version" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
# pg_isready is the readiness check itself; give a starting server up to 30 s.
for _ in $(seq 60); do
  pg_isready -q -h "$host" -p "$port" && exit 0
  sleep 0.5
done
echo "PostgreSQL is not answering on $host:$port" >&2
exit 1
