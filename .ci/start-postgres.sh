#!/usr/bin/env bash
# Install (if missing) and start a throwaway PostgreSQL server on 127.0.0.1.
# Prints two lines: the test URL, then the data folder (stop with `pg_ctl -D <folder>/data stop`).
# The port is the first free one from $PGPORT_TEST (default 54329), so a server left running by an
# earlier run on the same machine does not make this one fail.
set -euo pipefail
PORT="${PGPORT_TEST:-54329}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
PORT=$(python3 - "$PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
for candidate in range(port, port + 100):
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        print(candidate)
        break
else:
    sys.exit(f"no free port in {port}..{port + 99}")
PY
)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DATA=$(mktemp -d /tmp/agentsprint-pg.XXXXXX)
chown postgres "$DATA"
su postgres -c "$PGBIN/initdb -D $DATA/data -A trust -U postgres" >/dev/null
su postgres -c "$PGBIN/pg_ctl -D $DATA/data -w -l $DATA/log -o '-c listen_addresses=127.0.0.1 -p $PORT -k /tmp -c max_connections=300 -c fsync=off' start" >&2 \
  || { cat "$DATA/log" >&2; exit 1; }
su postgres -c "$PGBIN/createdb -h 127.0.0.1 -p $PORT agentsprint_test" >&2
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/agentsprint_test"
echo "$DATA"
