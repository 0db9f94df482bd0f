#!/usr/bin/env bash
# Run a command with the local stack up, then stop what this run started.
#
# Usage: deploy/with-stack.sh [--pg] -- COMMAND [ARG...]
#
# `make test` runs the test suite through this script. It starts whatever is
# not running yet (Kafka and S3Proxy with deploy/stack.sh, PostgreSQL with
# deploy/postgres.sh when --pg is given), runs COMMAND, and on the way out,
# whether COMMAND passed, failed or was interrupted, stops exactly the
# services it started. A service that was already running (your own
# `make run`, or a shared stack named by MEDIAFLOW_STACK_DIR) is used and left
# running. Exits with COMMAND's exit code.
#
# A port held by anything but this stack dir's own service is refused, with
# the holder named: a foreign broker may have other credentials or settings,
# and the suite's outage tests stop and restart services through
# deploy/stack.sh, which only controls its own stack dir. To share a stack,
# point MEDIAFLOW_STACK_DIR at it.
#
# If this script itself is killed (SIGKILL, a crash of the machine), what it
# started is recorded in <stack dir>/run/started-by-with-stack: the next run
# takes it over and stops it at its end, and `make stack-down` stops it too.
#
# Environment: as deploy/stack.sh and deploy/postgres.sh (MEDIAFLOW_STACK_DIR,
# MEDIAFLOW_KAFKA_PORT, MEDIAFLOW_S3_PORT, MEDIAFLOW_PG_PORT...).
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$DEPLOY_DIR")"
STACK_DIR="$(realpath -m "${MEDIAFLOW_STACK_DIR:-$REPO_DIR/.stack}")"
LEDGER="$STACK_DIR/run/started-by-with-stack"

log() { printf 'with-stack: %s\n' "$*"; }
die() { printf 'with-stack: error: %s\n' "$*" >&2; exit 2; }

# is_up SERVICE: the service of this stack dir is running.
is_up() {
    case "$1" in
        kafka) "$DEPLOY_DIR/stack.sh" status kafka >/dev/null 2>&1 ;;
        s3) "$DEPLOY_DIR/stack.sh" status s3 >/dev/null 2>&1 ;;
        postgres) "$DEPLOY_DIR/postgres.sh" status >/dev/null 2>&1 ;;
    esac
}

# shellcheck disable=SC2317  # reached from the EXIT trap
stop_service() {
    case "$1" in
        kafka) "$DEPLOY_DIR/stack.sh" down kafka ;;
        s3) "$DEPLOY_DIR/stack.sh" down s3 ;;
        postgres) "$DEPLOY_DIR/postgres.sh" down ;;
    esac
}

# adopt_leftovers: the services an earlier run started and could not stop
# (it was killed). Its ledger names them on its second line; the first holds
# its pid, so a run still going in the same clone is not robbed of its stack.
adopt_leftovers() {
    local pid services
    [[ -s $LEDGER ]] || return 0
    pid="$(sed -n 1p "$LEDGER")"
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        return 0
    fi
    services="$(sed -n 2p "$LEDGER")"
    if [[ -n $services ]]; then
        log "taking over what an interrupted run left running: $services" >&2
    fi
    printf '%s\n' "$services"
}

write_ledger() {
    mkdir -p "$(dirname "$LEDGER")"
    printf '%s\n%s\n' "$$" "${started[*]}" >"$LEDGER"
}

# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
    local rc=$? service kept=()
    trap - EXIT INT TERM
    for service in "${services[@]}"; do
        [[ " ${started[*]} " == *" $service "* ]] || kept+=("$service")
    done
    ((${#kept[@]} == 0)) || log "left running (not started by this run): ${kept[*]}"
    if ((${#started[@]})); then
        log "stopping what this run started: ${started[*]}"
        for service in "${started[@]}"; do
            stop_service "$service" || rc=$((rc ? rc : 1))
        done
    fi
    rm -f "$LEDGER"
    exit "$rc"
}

usage() {
    sed -n 's/^# \{0,1\}//; 4p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

main() {
    local with_pg=no service
    while (($#)); do
        case "$1" in
            --pg) with_pg=yes ;;
            --) shift && break ;;
            *) usage ;;
        esac
        shift
    done
    (($#)) || usage

    services=(kafka s3)
    [[ $with_pg == no ]] || services+=(postgres)
    started=()
    read -r -a started <<<"$(adopt_leftovers)"
    for service in "${services[@]}"; do
        if ! is_up "$service" && [[ " ${started[*]} " != *" $service "* ]]; then
            started+=("$service")
        fi
    done
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # Recorded before starting: a run killed during start-up still gets cleaned up.
    write_ledger

    # Kafka and S3Proxy boot in parallel (stack.sh up), PostgreSQL beside them.
    local pg_pid=""
    if [[ $with_pg == yes ]]; then
        "$DEPLOY_DIR/postgres.sh" up &
        pg_pid=$!
    fi
    "$DEPLOY_DIR/stack.sh" up
    if [[ -n $pg_pid ]]; then
        wait "$pg_pid" || die "PostgreSQL did not start (above)"
    fi

    local rc=0
    "$@" || rc=$?
    exit "$rc"
}

main "$@"
