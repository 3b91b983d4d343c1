#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL cluster on loopback for the tests and benchmarks:
# installs Debian's `postgresql` when its server programs are missing, runs `initdb` in a new
# directory, starts it with `pg_ctl` on 127.0.0.1 and prints the connection URL. Nothing of an
# existing PostgreSQL installation is touched. Fails (exit status 1, with the reason) when the
# cluster cannot start.
#
#   scripts/pg-cluster.sh start DIR PORT [--durable]   # prints postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/pg-cluster.sh stop DIR
#
# Without --durable the cluster skips fsync (a test cluster whose data is thrown away); with it,
# PostgreSQL's defaults (fsync on, synchronous_commit on) hold, as in production: benchmarks use it.
set -euo pipefail

die() { echo "pg-cluster: $*" >&2; exit 1; }

bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

# Runs a PostgreSQL program as the cluster's owner: initdb refuses to run as root, so root
# runs it as the `postgres` user the Debian package creates.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_installed() {
  if bindir >/dev/null; then return 0; fi
  echo "pg-cluster: installing Debian's postgresql" >&2
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; } ||
      die "apt-get could not install postgresql"
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
      die "postgresql is not installed and sudo apt-get could not install it"
  fi
  bindir >/dev/null || die "postgresql installed but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
}

start() {
  local dir=$1 port=$2 durable=${3:-}
  ensure_installed
  local bin
  bin=$(bindir)
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $(tail -5 "$dir/initdb.log")"
  fi
  local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=600"
  if [ "$durable" != "--durable" ]; then
    opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null ||
    die "pg_ctl could not start the cluster on 127.0.0.1:$port: $(tail -5 "$dir/server.log" 2>/dev/null)"
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local dir=$1 bin
  bin=$(bindir) || return 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) [ $# -ge 3 ] || die "usage: $0 start DIR PORT [--durable]"; start "$2" "$3" "${4:-}" ;;
  stop) [ $# -ge 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
  *) die "usage: $0 start DIR PORT [--durable] | stop DIR" ;;
esac
