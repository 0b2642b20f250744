#!/usr/bin/env bash
#
# compose/postgres.sh - runs a private PostgreSQL 15 cluster for local development and
# tests (its own initdb, its own port), separate from any cluster the Debian package made.
#
# Usage:
#   compose/postgres.sh up       initdb once, start, wait until ready, ensure role+database
#   compose/postgres.sh down     stop (pg_ctl stop -m fast)
#   compose/postgres.sh status   exit 0 when running and ready, 3 when stopped
#   PG_PORT=5433 compose/postgres.sh up    a second, independent cluster
#
# Environment (defaults in brackets):
#   PG_PORT              TCP port, listening on 127.0.0.1 only [5432]
#   PG_BIN               PostgreSQL binaries [/usr/lib/postgresql/15/bin]
#   PG_READY_TIMEOUT     seconds to wait for readiness [60]
#   TICKETING_RUN_DIR    runtime state [<repo>/.run]
#
# Layout: data in $RUN_DIR/postgres-$PG_PORT/data, server log in $RUN_DIR/postgres-$PG_PORT.log.
# When the postgres OS user cannot reach $RUN_DIR (for example a checkout under /root), the
# cluster directory falls back to /var/tmp/ticketing-<hash of RUN_DIR>/postgres-$PG_PORT.
#
# Settings: listen_addresses=127.0.0.1, no Unix socket, synchronous_commit=on, fsync=on,
# idle_in_transaction_session_timeout=60s, max_connections=300, shared_buffers=256MB,
# pg_stat_statements preloaded (loadgen counts statements per hold with it) and created in
# template1 and ticketing, so every new database has it.
# Auth: every role, the superuser included, signs in with a password (scram-sha-256) over
# TCP from 127.0.0.1; nothing is trusted. Roles, converged on every `up`:
#   postgres       the superuser; random password in $RUN_DIR/postgres-password (mode 600),
#                  set in single-user mode before each start (so an older cluster that
#                  trusted it gets one too) and on every `up`. Only this script uses it.
#   ticketing      the schema owner (migrations, the replay CLI, the payment simulator):
#                  LOGIN CREATEDB (tests create databases), not SUPERUSER, no CREATEROLE;
#                  owns database ticketing; member of pg_read_all_stats and may reset
#                  pg_stat_statements (the benchmark reads it). Password: ticketing (the
#                  cluster listens on 127.0.0.1 only).
#   ticketing_app  the services: LOGIN and nothing else; random password in
#                  $RUN_DIR/app-db-password. `projections migrate --grant-to ticketing_app`
#                  (compose/up.sh runs it as the owner) gives it DML; it cannot create, alter
#                  or drop anything, nor rewrite events.
# Connect as user ticketing, password ticketing, to 127.0.0.1:$PG_PORT, database ticketing.
#
# The server runs as the postgres OS user (it refuses root), via runuser.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${PG_PORT:-5432}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_READY_TIMEOUT="${PG_READY_TIMEOUT:-60}"
PG_OS_USER=postgres
HOST=127.0.0.1

[[ $PG_PORT =~ ^[0-9]+$ ]] || die "PG_PORT must be a number, got '$PG_PORT'"

as_pg() {
    runuser -u "$PG_OS_USER" -- "$@"
}

# Directory that holds this cluster; must be reachable by the postgres OS user.
cluster_dir() {
    local preferred="$RUN_DIR/postgres-$PG_PORT"
    mkdir -p "$RUN_DIR"
    if as_pg test -x "$RUN_DIR" 2>/dev/null && as_pg test -r "$RUN_DIR" 2>/dev/null; then
        printf '%s\n' "$preferred"
    else
        local hash
        hash=$(printf '%s' "$RUN_DIR" | cksum | cut -d' ' -f1)
        log "the $PG_OS_USER OS user cannot reach $RUN_DIR: keeping the cluster under /var/tmp/ticketing-$hash"
        printf '/var/tmp/ticketing-%s/postgres-%s\n' "$hash" "$PG_PORT"
    fi
}

CLUSTER_DIR=""
DATA=""
LOGFILE="$RUN_DIR/postgres-$PG_PORT.log"

init_paths() {
    id "$PG_OS_USER" >/dev/null 2>&1 || die "no '$PG_OS_USER' OS user: run compose/install-deps.sh"
    [[ -x $PG_BIN/postgres ]] || die "no PostgreSQL binaries in $PG_BIN: run compose/install-deps.sh"
    CLUSTER_DIR=$(cluster_dir)
    DATA="$CLUSTER_DIR/data"
}

pg_ctl_() {
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" "$@"
}

# True when our own postmaster (from $DATA/postmaster.pid) is alive.
ours_running() {
    [[ -f $DATA/postmaster.pid ]] || return 1
    pg_ctl_ status >/dev/null 2>&1
}

# The schema owner's password; the other roles' are random, in the run folder.
OWNER_PASSWORD=ticketing

psql_as() {
    local user=$1 db=$2 password=$OWNER_PASSWORD
    shift 2
    [[ $user == postgres ]] && password=$(secret_file postgres-password)
    PGPASSWORD=$password PGCONNECT_TIMEOUT=5 PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$HOST" -p "$PG_PORT" -U "$user" -d "$db" "$@"
}

# A random password kept in $RUN_DIR/NAME (mode 600), made on first use.
secret_file() {
    local file="$RUN_DIR/$1"
    if [[ ! -s $file ]]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n=+/' >"$file")
    fi
    cat "$file"
}

ready() {
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 2 &&
        [[ $(psql_as ticketing ticketing -Atc 'select 1' 2>/dev/null) == 1 ]]
}

server_accepts() {
    ours_running || die "postgres on $PG_PORT exited during startup; see $LOGFILE"
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 2
}

# Something listens on the port and it is not our cluster: stop a Debian cluster on that
# port when there is one, otherwise fail.
clear_port() {
    tcp_open "$HOST" "$PG_PORT" || return 0
    local ver name port status
    if command -v pg_lsclusters >/dev/null 2>&1; then
        while read -r ver name port status _; do
            if [[ $port == "$PG_PORT" && $status == online* ]]; then
                log "port $PG_PORT is taken by the Debian cluster $ver/$name: stopping it (pg_ctlcluster $ver $name stop)"
                pg_ctlcluster "$ver" "$name" stop
            fi
        done < <(pg_lsclusters -h 2>/dev/null || true)
    fi
    if tcp_open "$HOST" "$PG_PORT"; then
        port_owner "$PG_PORT" >&2
        die "port $HOST:$PG_PORT is in use by something that is not this cluster ($DATA);" \
            "stop it or choose another PG_PORT"
    fi
}

write_config() {
    cat >"$DATA/ticketing.conf" <<EOF
# Written by compose/postgres.sh on every start; edits here are overwritten.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
idle_in_transaction_session_timeout = '60s'
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = -1
log_timezone = 'UTC'
timezone = 'UTC'
# Statement counts for benchmarks (loadgen reports statements per hold); negligible cost.
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track_utility = on
EOF
    cat >"$DATA/pg_hba.conf" <<EOF
# Written by compose/postgres.sh. Every role, the superuser included, uses its password.
# TYPE  DATABASE  USER      ADDRESS          METHOD
host    all       all       127.0.0.1/32     scram-sha-256
EOF
    chown "$PG_OS_USER:" "$DATA/ticketing.conf" "$DATA/pg_hba.conf"
    chmod 600 "$DATA/ticketing.conf" "$DATA/pg_hba.conf"
    grep -qxF "include 'ticketing.conf'" "$DATA/postgresql.conf" ||
        printf "\ninclude 'ticketing.conf'\n" >>"$DATA/postgresql.conf"
}

initdb_once() {
    if [[ -f $DATA/PG_VERSION ]]; then
        return 0
    fi
    log "initdb in $DATA"
    rm -rf "$DATA"
    mkdir -p "$DATA"
    chown "$PG_OS_USER:" "$CLUSTER_DIR" "$DATA"
    chmod 700 "$DATA"
    # initdb wants the superuser's password when nothing is trusted: from a file only the
    # postgres OS user can read, removed straight after.
    local pwfile="$CLUSTER_DIR/initdb.pw"
    (umask 077 && secret_file postgres-password >"$pwfile")
    chown "$PG_OS_USER:" "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C --pwfile="$pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$CLUSTER_DIR/initdb.log" 2>&1 || {
        rm -f "$pwfile"
        cat "$CLUSTER_DIR/initdb.log" >&2
        die "initdb failed"
    }
    rm -f "$pwfile"
}

# Gives the superuser the password of $RUN_DIR/postgres-password while the server is
# stopped (single-user mode, no network): nothing is trusted, so this is how a new cluster,
# or one an older version of this script started, lets the superuser in. The statement
# goes through stdin, never a command line.
set_superuser_password() {
    local password
    password=$(secret_file postgres-password)
    printf "ALTER ROLE postgres PASSWORD '%s';\n" "$password" |
        as_pg "$PG_BIN/postgres" --single -D "$DATA" -c log_min_messages=warning postgres \
            >>"$CLUSTER_DIR/single-user.log" 2>&1 ||
        die "cannot set the superuser's password; see $CLUSTER_DIR/single-user.log"
}

ensure_role_and_db() {
    local superuser_password app_password
    superuser_password=$(secret_file postgres-password)
    app_password=$(app_db_password)
    psql_as postgres postgres >/dev/null 2>"$CLUSTER_DIR/roles.err" \
        -v superuser_password="$superuser_password" -v owner_password="$OWNER_PASSWORD" \
        -v app_password="$app_password" <<'SQL' || {
SELECT format('ALTER ROLE postgres PASSWORD %L', :'superuser_password') \gexec
SELECT format('CREATE ROLE ticketing LOGIN PASSWORD %L', :'owner_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ticketing') \gexec
SELECT format('ALTER ROLE ticketing LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION '
              'NOBYPASSRLS PASSWORD %L', :'owner_password') \gexec
GRANT pg_read_all_stats TO ticketing;
SELECT format('CREATE ROLE ticketing_app LOGIN PASSWORD %L', :'app_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ticketing_app') \gexec
SELECT format('ALTER ROLE ticketing_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
              'NOREPLICATION NOBYPASSRLS PASSWORD %L', :'app_password') \gexec
SELECT 'CREATE DATABASE ticketing OWNER ticketing'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ticketing') \gexec
ALTER DATABASE ticketing OWNER TO ticketing;
SQL
        cat "$CLUSTER_DIR/roles.err" >&2
        die "cannot set up the roles as the superuser on $PG_PORT (a cluster started elsewhere," \
            "or $RUN_DIR/postgres-password changed while it ran: compose/postgres.sh down, then up)"
    }
    # Extensions are the superuser's to create: once in template1 (every database created
    # later, by tests or the benchmark, inherits it) and in ticketing.
    local db
    for db in template1 ticketing; do
        psql_as postgres "$db" >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
GRANT EXECUTE ON FUNCTION pg_stat_statements_reset(oid, oid, bigint) TO ticketing;
SQL
    done
}

# The application role's password: random, kept in the run folder (mode 600).
app_db_password() {
    secret_file app-db-password
}

cmd_up() {
    init_paths
    mkdir -p "$CLUSTER_DIR"
    chown "$PG_OS_USER:" "$CLUSTER_DIR"
    if ours_running; then
        log "postgres on $PG_PORT already running ($DATA)"
    else
        clear_port
        initdb_once
        write_config
        set_superuser_password
        touch "$LOGFILE"
        log "starting postgres on $HOST:$PG_PORT (data $DATA, log $LOGFILE)"
        # Without -l the server's output goes to pg_ctl's stdout: root opens the log file,
        # so the postgres user needs no write access to $RUN_DIR.
        # 9>&-: the server must not inherit the lock taken by take_lock.
        pg_ctl_ -w -t "$PG_READY_TIMEOUT" start >>"$LOGFILE" 2>&1 9>&- || {
            tail -n 30 "$LOGFILE" >&2
            die "postgres did not start; see $LOGFILE"
        }
    fi
    wait_for "postgres accepting connections on $PG_PORT" "$PG_READY_TIMEOUT" server_accepts ||
        die "postgres not accepting connections; see $LOGFILE"
    ensure_role_and_db
    if [[ $(psql_as postgres postgres -Atc "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'") != 0 ]]; then
        log "WARNING: the cluster on $PG_PORT still trusts some connections (started by an older" \
            "version of this script): compose/postgres.sh down, then up, to require passwords"
    fi
    wait_for "ticketing can query on $PG_PORT" "$PG_READY_TIMEOUT" ready ||
        die "postgres is up but ticketing cannot query; see $LOGFILE"
    log "postgres ready: postgres://ticketing:ticketing@$HOST:$PG_PORT/ticketing"
}

cmd_down() {
    init_paths
    if ours_running; then
        log "stopping postgres on $PG_PORT"
        pg_ctl_ -m fast -w -t 60 stop >>"$LOGFILE" 2>&1 || die "pg_ctl stop failed; see $LOGFILE"
        log "postgres on $PG_PORT stopped"
    else
        log "postgres on $PG_PORT is not running"
    fi
}

cmd_status() {
    init_paths
    if ours_running; then
        if ready; then
            echo "postgres on $PG_PORT: running and ready ($DATA)"
            return 0
        fi
        echo "postgres on $PG_PORT: running, not ready ($DATA)"
        return 1
    fi
    echo "postgres on $PG_PORT: stopped ($DATA)"
    return 3
}

case "${1:-}" in
up | down) take_lock "postgres-$PG_PORT" $((PG_READY_TIMEOUT * 2 + 60)) ;;
*) ;;
esac

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
    sed -n '3,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
