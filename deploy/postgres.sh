#!/usr/bin/env bash
# Local PostgreSQL for mediaflow's PostgreSQL-backed tests, without Docker: a
# throwaway cluster on loopback only, trust auth, one per stack dir.
#
# Usage: deploy/postgres.sh up|down|status|url|dir|clean
#
#   up      install Debian's server package if missing (as root; anyone else
#           is told which package to install), create the cluster once, start
#           it, create database `mediaflow`. A no-op when running.
#   down    stop (fast shutdown: disconnects clients, no data loss).
#   status  "up"/"down" with pid and port; exits 1 when down.
#   url     print the connection URL (postgresql://postgres@127.0.0.1:PORT/mediaflow).
#   dir     print the folder holding the cluster (data/, postgres.log).
#   clean   down + delete the cluster.
#
# Where the cluster lives, and as whom the server runs:
#   - an ordinary user runs the server as themselves, in <stack dir>/pg;
#   - root cannot (PostgreSQL refuses to run as root), so the server runs as
#     the `postgres` system user. That user cannot enter a private folder (a
#     home directory of mode 700, Debian's default since 12, or `mktemp -d`),
#     so root's cluster goes to /var/tmp/mediaflow-pg-<hash>, owned by
#     `postgres` and mode 700, one per stack dir (<hash>: the first 12 hex
#     digits of the SHA-256 of the stack dir's absolute path). <stack dir>/pg
#     is a symlink to it, and its stack-dir file names the stack it serves.
#     A cluster created in <stack dir>/pg itself by an earlier version is kept.
#   MEDIAFLOW_PG_DIR overrides both.
#
# Environment: MEDIAFLOW_STACK_DIR [<repo>/.stack], MEDIAFLOW_PG_PORT [55432],
#              MEDIAFLOW_PG_DIR [see above].
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/common.sh
source "$DEPLOY_DIR/common.sh"
REPO_DIR="$(dirname "$DEPLOY_DIR")"
STACK_DIR="$(realpath -m "${MEDIAFLOW_STACK_DIR:-$REPO_DIR/.stack}")"
STACK_LINK="$STACK_DIR/pg"
PG_PORT="${MEDIAFLOW_PG_PORT:-55432}"
PG_DB="mediaflow"
PG_USER="postgres"

# pg_dir: where the cluster lives (see the header).
pg_dir() {
    if [[ -n ${MEDIAFLOW_PG_DIR:-} ]]; then
        realpath -m "$MEDIAFLOW_PG_DIR"
    elif [[ $(id -u) -ne 0 || (-f $STACK_LINK/data/PG_VERSION && ! -L $STACK_LINK) ]]; then
        printf '%s\n' "$STACK_LINK"
    else
        printf '/var/tmp/mediaflow-pg-%s\n' "$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-12)"
    fi
}

PG_DIR="$(pg_dir)"
PG_DATA="$PG_DIR/data"
# The log sits beside the data: the server writes it, and as `postgres` it may
# not be able to enter the stack dir.
PG_LOG="$PG_DIR/postgres.log"

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
# Paths given to them are absolute.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        # From /: the caller's folder may be one `postgres` cannot enter.
        (cd / && runuser -u postgres -- "$@")
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

# running_port: the port the running server listens on (line 4 of postmaster.pid).
running_port() { sed -n 4p "$PG_DATA/postmaster.pid"; }

# make_pg_dir: create the cluster's folder, reachable by the user the server
# runs as (see the header), and for root the stack dir's pg symlink to it.
make_pg_dir() {
    if [[ $(id -u) -ne 0 ]]; then
        mkdir -p "$PG_DIR"
        return 0
    fi
    id postgres >/dev/null 2>&1 ||
        die "no 'postgres' system user to run the server as; install Debian's postgresql package"
    (umask 077 && mkdir -p "$PG_DIR")
    chown postgres: "$PG_DIR"
    chmod 700 "$PG_DIR"
    printf '%s\n' "$STACK_DIR" >"$PG_DIR/stack-dir"
    runuser -u postgres -- test -w "$PG_DIR" ||
        die "user 'postgres' cannot reach $PG_DIR (a parent folder is not searchable by other users); set MEDIAFLOW_PG_DIR to a folder it can reach"
    if [[ $PG_DIR != "$STACK_LINK" ]]; then
        mkdir -p "$STACK_DIR"
        # A pg folder left without a cluster (an older version's failed first
        # start) gives way to the link; one holding a cluster never gets here.
        [[ -L $STACK_LINK || ! -e $STACK_LINK ]] || rm -rf "$STACK_LINK"
        ln -sfn "$PG_DIR" "$STACK_LINK"
    fi
}

init_cluster() {
    [[ -f $PG_DATA/PG_VERSION ]] && return 0
    log "creating a PostgreSQL cluster in $PG_DATA (once)..."
    make_pg_dir
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" --auth=trust -E UTF8 \
        --locale=C.UTF-8 >/dev/null
    # Loopback TCP only. No unix socket: the tests connect over TCP, and a
    # socket path under a deep or spaced clone path can exceed the 107 bytes
    # a socket address holds.
    cat >>"$PG_DATA/postgresql.conf" <<'EOF'

# mediaflow local test cluster (deploy/postgres.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off                  # throwaway test data: speed over durability
synchronous_commit = off
full_page_writes = off
max_connections = 100
EOF
    cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  trust
EOF
}

cmd_up() {
    pg_bin
    if running; then
        [[ $(running_port) == "$PG_PORT" ]] ||
            die "this stack's PostgreSQL is running on port $(running_port), not $PG_PORT; stop it first (deploy/postgres.sh down)"
        log "postgres: already running (port $PG_PORT)"
    else
        if port_open "$PG_PORT"; then
            die "$(port_taken_message "$PG_PORT" PostgreSQL MEDIAFLOW_PG_PORT)"
        fi
        init_cluster
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -o "-p $PG_PORT" -w -t 60 start >/dev/null || {
            tail -n 25 "$PG_LOG" >&2 || true
            die "PostgreSQL did not start; see $PG_LOG"
        }
        log "postgres: started (port $PG_PORT, cluster in $PG_DIR)"
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
        log "postgres up    pid $(head -n 1 "$PG_DATA/postmaster.pid")  127.0.0.1:$(running_port)"
    else
        log "postgres down  127.0.0.1:$PG_PORT"
        return 1
    fi
}

cmd_clean() {
    cmd_down
    rm -rf "$PG_DIR"
    [[ ! -L $STACK_LINK ]] || rm -f "$STACK_LINK"
    log "postgres: cluster deleted ($PG_DIR)"
}

url() { printf 'postgresql://%s@127.0.0.1:%s/%s\n' "$PG_USER" "$PG_PORT" "$PG_DB"; }

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    url) url ;;
    dir) printf '%s\n' "$PG_DIR" ;;
    clean) cmd_clean ;;
    *)
        sed -n 's/^# \{0,1\}//; 5p' "${BASH_SOURCE[0]}" >&2
        exit 2
        ;;
esac
