#!/usr/bin/env bash
# A throwaway PostgreSQL server for benchmarks and trials by hand, as the
# tests start one: initdb into DIR, a unix socket in DIR, no TCP port,
# trust authentication, the server's default durability (fsync on). As root
# the server runs as postgres, which must be able to reach DIR.
#   scripts/pg-throwaway.sh start DIR   prints the URL of database "flashnas"
#   scripts/pg-throwaway.sh restart DIR
#   scripts/pg-throwaway.sh stop DIR    stops it and removes DIR
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|restart|stop DIR" >&2; exit 2; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "$0: PostgreSQL's server is not installed (bash scripts/setup.sh installs it)" >&2; exit 2; }
as=()
if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
ctl() { "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o "-k $dir -c listen_addresses=''" "$@" >/dev/null; }
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    ctl start
    "$bin/psql" -X -q -d "postgresql://postgres@/postgres?host=$dir" -c 'CREATE DATABASE flashnas'
    echo "postgresql://postgres@/flashnas?host=$dir" ;;
  restart) ctl -m fast restart ;;
  stop) ctl -m fast stop || true; rm -rf "$dir" ;;
  *) echo "usage: $0 start|restart|stop DIR" >&2; exit 2 ;;
esac
