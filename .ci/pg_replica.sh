#!/usr/bin/env bash
# A streaming read replica of the local PostgreSQL 15 (127.0.0.1:5432) on 127.0.0.1:5433, for
# DATABASE_REPLICA_URL (docs/architecture.md, "Read replica"). Idempotent: a replica that is up
# and streaming is left alone; a stopped one is started; a broken one (no WAL receiver, e.g.
# the primary recycled WAL it still needed: there is no replication slot, on purpose, so a
# stopped replica never fills the primary's disk) is rebuilt from a fresh base backup.
#
#   .ci/pg_replica.sh [start]   set up if needed, start, wait until streaming
#   .ci/pg_replica.sh status    exit 0 when up and streaming
#   .ci/pg_replica.sh stop      stop it (keeps the data directory)
#   .ci/pg_replica.sh destroy   stop it and delete the data directory
#
# The primary's only change: a `host replication all 127.0.0.1/32 trust` line in pg_hba.conf
# (appended when missing) and a reload. Its postgresql.conf stays as it is (PG 15 defaults:
# wal_level=replica, max_wal_senders=10). Runs as root (commands as the postgres OS user
# through runuser) or as postgres.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA_PORT=${REPLICA_PORT:-5433}
REPLICA_DIR=${REPLICA_DIR:-/var/tmp/eduplatform-replica}
REPLICA_LOG=${REPLICA_LOG:-/var/tmp/eduplatform-replica.log}
HBA_LINE="host replication all 127.0.0.1/32 trust"

as_pg() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}
primary_sql() { psql -X -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -Atc "$1"; }
replica_sql() { psql -X -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres -Atc "$1" 2>/dev/null; }
running() { as_pg "$PGBIN/pg_ctl" -D "$REPLICA_DIR" status >/dev/null 2>&1; }
streaming() {
  [ "$(replica_sql "SELECT pg_is_in_recovery()")" = t ] &&
    [ "$(replica_sql "SELECT status FROM pg_stat_wal_receiver")" = streaming ]
}
wait_streaming() {
  for _ in $(seq 1 "${1:-30}"); do
    if streaming; then return 0; fi
    sleep 1
  done
  return 1
}
stop() {
  if [ -f "$REPLICA_DIR/PG_VERSION" ] && running; then
    as_pg "$PGBIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w stop >/dev/null
  fi
}

ensure_hba() {
  local hba
  hba=$(primary_sql "SHOW hba_file")
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    printf '# eduplatform read replica (.ci/pg_replica.sh)\n%s\n' "$HBA_LINE" >>"$hba"
    primary_sql "SELECT pg_reload_conf()" >/dev/null
    sleep 1  # the postmaster rereads pg_hba.conf on SIGHUP, asynchronously
  fi
}

base_backup() {
  rm -rf "$REPLICA_DIR"
  install -d -m 700 -o postgres -g postgres "$REPLICA_DIR"
  # -R: standby.signal + primary_conninfo; -X stream: the WAL written during the copy too.
  as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$REPLICA_DIR" \
    -R -X stream --checkpoint=fast
  # Debian keeps the primary's configuration in /etc, so the copy has none: the replica's own.
  # A hot standby needs these at least as large as on the primary.
  {
    echo "# eduplatform read replica (.ci/pg_replica.sh); the primary's copy is in /etc"
    echo "port = $REPLICA_PORT"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '/var/run/postgresql'"
    echo "hot_standby = on"
    echo "hot_standby_feedback = on"
    echo "timezone = 'Etc/UTC'"
    echo "log_timezone = 'Etc/UTC'"
    for setting in max_connections max_worker_processes max_wal_senders \
      max_prepared_transactions max_locks_per_transaction; do
      echo "$setting = $(primary_sql "SHOW $setting")"
    done
  } | as_pg tee "$REPLICA_DIR/postgresql.conf" >/dev/null
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' |
    as_pg tee "$REPLICA_DIR/pg_hba.conf" >/dev/null
  as_pg touch "$REPLICA_DIR/pg_ident.conf"
}

start_replica() {
  as_pg touch "$REPLICA_LOG" 2>/dev/null || install -m 644 -o postgres /dev/null "$REPLICA_LOG"
  as_pg "$PGBIN/pg_ctl" -D "$REPLICA_DIR" -l "$REPLICA_LOG" -w -t 60 \
    -o "-p $REPLICA_PORT -c hot_standby=on" start >/dev/null
}

start() {
  if running && streaming; then
    echo "replica on 127.0.0.1:$REPLICA_PORT: already streaming"
    return 0
  fi
  pg_isready -q -h 127.0.0.1 -p "$PRIMARY_PORT" || {
    echo "pg_replica: the primary (127.0.0.1:$PRIMARY_PORT) is not up" >&2
    return 1
  }
  ensure_hba
  if [ -f "$REPLICA_DIR/standby.signal" ] && [ -f "$REPLICA_DIR/postgresql.conf" ]; then
    running || start_replica || true
    if wait_streaming 15; then
      echo "replica on 127.0.0.1:$REPLICA_PORT: started, streaming"
      return 0
    fi
    echo "pg_replica: the replica does not stream (log: $REPLICA_LOG); rebuilding" >&2
    stop
  fi
  base_backup
  start_replica
  if wait_streaming 30; then
    echo "replica on 127.0.0.1:$REPLICA_PORT: new base backup, streaming"
    return 0
  fi
  echo "pg_replica: the replica did not start streaming (log: $REPLICA_LOG)" >&2
  return 1
}

case "${1:-start}" in
  start) start ;;
  status) running && streaming ;;
  stop) stop ;;
  destroy)
    stop
    rm -rf "$REPLICA_DIR"
    ;;
  *)
    echo "usage: $0 [start|status|stop|destroy]" >&2
    exit 2
    ;;
esac
