#!/usr/bin/env bash
# Local PostgreSQL for mediaflow's PostgreSQL-backed tests, without Docker: a
# throwaway cluster under the stack state dir, on loopback only, trust auth.
#
# Usage: deploy/postgres.sh up|down|status|url|clean
#
#   up      install Debian's server package if missing, create the cluster
#           once, start it, create database `mediaflow`. A no-op when running.
#   down    stop (fast shutdown: disconnects clients, no data loss).
#   status  "up"/"down" with pid and port; exits 1 when down.
#   url     print the connection URL (postgresql://postgres@127.0.0.1:PORT/mediaflow).
#   clean   down + delete the cluster.
#
# Environment: MEDIAFLOW_STACK_DIR [<repo>/.stack] (cluster in its pg/ folder),
#              MEDIAFLOW_PG_PORT [55432].
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${MEDIAFLOW_STACK_DIR:-$REPO_DIR/.stack}"
PG_DIR="$STACK_DIR/pg"
PG_DATA="$PG_DIR/data"
PG_LOG="$STACK_DIR/logs/postgres.log"
PG_PORT="${MEDIAFLOW_PG_PORT:-55432}"
PG_DB="mediaflow"
PG_USER="postgres"
# The server's unix socket goes into our own folder, not /var/run/postgresql,
# which may not exist or belong to a system cluster.
PG_SOCKET_DIR="$PG_DIR/socket"

log() { printf '%s\n' "$*"; }
die() { printf 'postgres.sh: error: %s\n' "$*" >&2; exit 1; }

# find_pg_bin: the server binaries directory (pg_ctl, initdb, postgres).
# Debian keeps them out of PATH in /usr/lib/postgresql/<major>/bin.
find_pg_bin() {
    local dir
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    # Newest major version first.
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -n -r); do
        [[ -x $dir/pg_ctl && -x $dir/initdb ]] && { printf '%s\n' "$dir"; return 0; }
    done
    return 1
}

install_pg() {
    [[ $(id -u) -eq 0 ]] ||
        die "PostgreSQL server not found; install it (Debian: sudo apt-get install postgresql) and re-run"
    command -v apt-get >/dev/null 2>&1 ||
        die "PostgreSQL server not found and apt-get is unavailable; install a PostgreSQL server (pg_ctl, initdb)"
    log "installing Debian's postgresql package (once)..."
    apt-get update -qq
    # Debian's package starts a system cluster on 5432; it is left alone.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# as_pg CMD...: PostgreSQL refuses to run as root, so root runs the server
# tools as the `postgres` system user; anyone else runs them as themselves.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

PG_BIN=""
pg_bin() {
    [[ -n $PG_BIN ]] && return 0
    PG_BIN="$(find_pg_bin)" || { install_pg; PG_BIN="$(find_pg_bin)"; } ||
        die "PostgreSQL server binaries still not found after installing"
}

running() {
    [[ -f $PG_DATA/postmaster.pid ]] || return 1
    pg_bin
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

init_cluster() {
    [[ -f $PG_DATA/PG_VERSION ]] && return 0
    log "creating a PostgreSQL cluster in $PG_DATA (once)..."
    mkdir -p "$PG_DATA" "$PG_SOCKET_DIR" "$(dirname "$PG_LOG")"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 ||
            die "no 'postgres' system user to run the server as; install Debian's postgresql package"
        chown -R postgres: "$PG_DIR"
        touch "$PG_LOG" && chown postgres: "$PG_LOG"
        runuser -u postgres -- test -w "$PG_DATA" ||
            die "user 'postgres' cannot reach $PG_DATA (a parent folder is not world-searchable); set MEDIAFLOW_STACK_DIR to a folder it can reach"
    fi
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" --auth=trust -E UTF8 \
        --locale=C.UTF-8 >/dev/null
    # Loopback only; a dev box's test database needs no password.
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# mediaflow local test cluster (deploy/postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_SOCKET_DIR'
fsync = off                  # throwaway test data: speed over durability
synchronous_commit = off
full_page_writes = off
max_connections = 100
EOF
    cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
EOF
}

cmd_up() {
    pg_bin
    if running; then
        log "postgres: already running (port $PG_PORT)"
    else
        init_cluster
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -o "-p $PG_PORT" -w -t 60 start >/dev/null || {
            tail -n 25 "$PG_LOG" >&2 || true
            die "PostgreSQL did not start; see $PG_LOG"
        }
        log "postgres: started (port $PG_PORT)"
    fi
    # Create the database if needed (also repairs a cluster whose first `up` was interrupted).
    local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -Atq)
    if [[ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]]; then
        "${psql[@]}" -c "CREATE DATABASE $PG_DB"
        log "postgres: created database $PG_DB"
    fi
    log "  url     $(url)"
}

cmd_down() {
    if ! running; then
        log "postgres: not running"
        return 0
    fi
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
    log "postgres: stopped"
}

cmd_status() {
    if running; then
        log "postgres up    pid $(head -n 1 "$PG_DATA/postmaster.pid")  127.0.0.1:$PG_PORT"
    else
        log "postgres down  127.0.0.1:$PG_PORT"
        return 1
    fi
}

url() { printf 'postgresql://%s@127.0.0.1:%s/%s\n' "$PG_USER" "$PG_PORT" "$PG_DB"; }

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    url) url ;;
    clean) cmd_down && rm -rf "$PG_DIR" && log "postgres: cluster deleted ($PG_DIR)" ;;
    *)
        sed -n 's/^# \{0,1\}//; 5p' "${BASH_SOURCE[0]}" >&2
        exit 2
        ;;
esac
