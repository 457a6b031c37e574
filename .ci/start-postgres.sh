#!/usr/bin/env bash
# Install (if missing) and start a throwaway PostgreSQL server on 127.0.0.1; prints the test URL.
set -euo pipefail
PORT="${PGPORT_TEST:-54329}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DATA=$(mktemp -d /tmp/agentsprint-pg.XXXXXX)
chown postgres "$DATA"
su postgres -c "$PGBIN/initdb -D $DATA/data -A trust -U postgres" >/dev/null
su postgres -c "$PGBIN/pg_ctl -D $DATA/data -w -l $DATA/log -o '-c listen_addresses=127.0.0.1 -p $PORT -k /tmp -c max_connections=300 -c fsync=off' start" >&2
su postgres -c "$PGBIN/createdb -h 127.0.0.1 -p $PORT agentsprint_test" >&2
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/agentsprint_test"
