#!/usr/bin/env bash
# A local three-node Kafka cluster (KRaft) for replication and chaos tests,
# from the same Maven jars as deploy/stack.sh's single broker.
#
# Usage: deploy/cluster.sh up|down|status|clean
#        deploy/cluster.sh kill|stop|start NODE     (NODE: 1, 2 or 3; kill also: all)
#        deploy/cluster.sh controller               (prints the active controller's node)
#        deploy/cluster.sh bootstrap                (prints bootstrap.servers)
#
# Layout: combined mode. Each node is a broker and one of the three controller
# voters (a static quorum), so losing any one node loses neither the metadata
# quorum (two of three) nor a write (topics are replicated three times with
# min.insync.replicas=2: deploy/topics.toml's `cluster` profile). Node N
# listens on the N-th of MEDIAFLOW_CLUSTER_PORTS, its controller on that port + 1.
#
#   up      format (once, one cluster id) and start the nodes not running; wait
#           until all three brokers are registered
#   down    stop every node (SIGTERM to all three at once, SIGKILL after 30 s)
#   kill N  SIGKILL node N (no controlled shutdown: a crash); `kill all` stops a
#           throwaway test cluster in a second instead of `down`'s 15 or so
#   stop N  SIGTERM node N and wait until it is gone
#   start N start node N and wait until it answers
#   clean   down + delete the nodes' data and logs
#
# State under ${MEDIAFLOW_STACK_DIR:-<repo>/.stack}/cluster/node-N/{data,logs,run};
# the jars are the stack's (<stack dir>/jars/kafka, fetched once). The JVMs
# compile with C1 only (-XX:TieredStopAtLevel=1): less CPU spent compiling
# while three brokers start on a small machine; a test load never needs C2.
#
# Environment (defaults in brackets):
#   MEDIAFLOW_CLUSTER_PORTS ["29092 29192 29292"]
#   MEDIAFLOW_CLUSTER_HEAP ["-Xms128m -Xmx384m"]  per node
#   MEDIAFLOW_STACK_TIMEOUT [120] seconds to wait for start-up
#   PYTHON [python3]  interpreter with confluent-kafka, for the readiness check
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/common.sh
source "$DEPLOY_DIR/common.sh"
REPO_DIR="$(dirname "$DEPLOY_DIR")"
STACK_DIR="${MEDIAFLOW_STACK_DIR:-$REPO_DIR/.stack}"
CLUSTER_DIR="$STACK_DIR/cluster"
JARS_DIR="$STACK_DIR/jars"
read -r -a PORTS <<<"${MEDIAFLOW_CLUSTER_PORTS:-29092 29192 29292}"
HEAP="${MEDIAFLOW_CLUSTER_HEAP:--Xms128m -Xmx384m}"
START_TIMEOUT="${MEDIAFLOW_STACK_TIMEOUT:-120}"
STOP_TIMEOUT=30
PYTHON="${PYTHON:-python3}"
KAFKA_MAIN="kafka.Kafka"

shopt -u patsub_replacement 2>/dev/null || true

log() { printf '%s\n' "$*"; }
die() { printf 'cluster.sh: error: %s\n' "$*" >&2; exit 1; }

((${#PORTS[@]} == 3)) || die "MEDIAFLOW_CLUSTER_PORTS must name three ports, not '${PORTS[*]}'"

node_dir() { printf '%s/node-%s\n' "$CLUSTER_DIR" "$1"; }
port_of() { printf '%s\n' "${PORTS[$(($1 - 1))]}"; }

check_node() {
    [[ $1 =~ ^[123]$ ]] || die "no node '$1': the nodes are 1, 2 and 3"
}

bootstrap() {
    local n out=()
    for n in 1 2 3; do out+=("127.0.0.1:$(port_of "$n")"); done
    (IFS=,; printf '%s\n' "${out[*]}")
}

# node_pid N: the pid of node N's JVM if it is alive and really ours.
node_pid() {
    local pidfile pid cmdline
    pidfile="$(node_dir "$1")/run/kafka.pid"
    [[ -s $pidfile ]] || return 1
    pid="$(<"$pidfile")"
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ $cmdline == *"$KAFKA_MAIN"* && $cmdline == *"$(node_dir "$1")/"* ]] || return 1
    printf '%s\n' "$pid"
}

# brokers_registered COUNT [NODE]: a metadata request (to NODE, or any node)
# lists at least COUNT brokers.
brokers_registered() {
    local servers
    if [[ -n ${2:-} ]]; then servers="127.0.0.1:$(port_of "$2")"; else servers="$(bootstrap)"; fi
    "$PYTHON" - "$servers" "$1" 2>/dev/null <<'PY'
import sys
from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
sys.exit(0 if len(admin.list_topics(timeout=3).brokers) >= int(sys.argv[2]) else 1)
PY
}

render_node() {
    local n="$1" dir text voters=() m
    dir="$(node_dir "$n")"
    for m in 1 2 3; do voters+=("$m@127.0.0.1:$(($(port_of "$m") + 1))"); done
    text="$(<"$DEPLOY_DIR/kafka/cluster.properties.template")"
    text="${text//@NODE_ID@/$n}"
    text="${text//@VOTERS@/$(IFS=,; printf '%s' "${voters[*]}")}"
    text="${text//@KAFKA_PORT@/$(port_of "$n")}"
    text="${text//@CONTROLLER_PORT@/$(($(port_of "$n") + 1))}"
    text="${text//@KAFKA_DATA_DIR@/$dir/data}"
    printf '%s\n' "$text" >"$dir/run/server.properties"
}

jvm_args() {
    local dir="$1"
    printf '%s\n' -cp "$JARS_DIR/kafka/*" "-Dlog4j2.configurationFile=$DEPLOY_DIR/kafka/log4j2.xml" \
        "-Dkafka.logs.dir=$dir/logs" -Djava.awt.headless=true
}

# format_all: one cluster id for the three log dirs, once.
format_all() {
    local n dir cluster_id=""
    for n in 1 2 3; do
        dir="$(node_dir "$n")"
        if [[ -f $dir/data/meta.properties ]]; then
            cluster_id="$(sed -n 's/^cluster.id=//p' "$dir/data/meta.properties")"
        fi
    done
    if [[ -z $cluster_id ]]; then
        until [[ -n $cluster_id && $cluster_id != -* ]]; do
            cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        done
    fi
    local pids=() nodes=()
    for n in 1 2 3; do
        dir="$(node_dir "$n")"
        [[ -f $dir/data/meta.properties ]] && continue
        mapfile -t jvm < <(jvm_args "$dir")
        java -XX:TieredStopAtLevel=1 "${jvm[@]}" kafka.tools.StorageTool format \
            --cluster-id "$cluster_id" --config "$dir/run/server.properties" --ignore-formatted \
            >>"$dir/logs/kafka.stdout" 2>&1 &
        pids+=("$!")
        nodes+=("$n")
    done
    local i
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || die "formatting node ${nodes[$i]} failed; see $(node_dir "${nodes[$i]}")/logs/kafka.stdout"
    done
}

launch() {
    local n="$1" dir port pid
    dir="$(node_dir "$n")"
    port="$(port_of "$n")"
    if pid="$(node_pid "$n")"; then
        log "node $n: already running (pid $pid)"
        return 0
    fi
    port_open "$port" && die "$(port_taken_message "$port" "Kafka node $n" MEDIAFLOW_CLUSTER_PORTS)"
    mapfile -t jvm < <(jvm_args "$dir")
    # shellcheck disable=SC2206  # the heap setting is deliberately word-split
    local -a heap=($HEAP)
    printf '=== %s: started by deploy/cluster.sh ===\n' "$(date '+%F %T')" >>"$dir/logs/kafka.stdout"
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    # shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$dir/run/kafka.pid" java "${heap[@]}" \
        -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError "${jvm[@]}" "$KAFKA_MAIN" \
        "$dir/run/server.properties" </dev/null >>"$dir/logs/kafka.stdout" 2>&1 &
    local i
    for i in {1..50}; do
        node_pid "$n" >/dev/null && { log "node $n: started (pid $(node_pid "$n"), port $port)"; return 0; }
        sleep 0.1
    done
    tail -n 25 "$dir/logs/kafka.stdout" >&2
    die "node $n did not start; see $dir/logs/kafka.stdout"
}

# wait_for COUNT [NODE]: until COUNT brokers are registered (as NODE sees it).
wait_for() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until brokers_registered "$@"; do
        ((SECONDS < deadline)) || die "the cluster did not show $1 brokers within ${START_TIMEOUT}s; see $CLUSTER_DIR/node-*/logs/"
        sleep 0.5
    done
}

prepare() {
    command -v java >/dev/null 2>&1 || die "java not found: run \`deploy/stack.sh up\` once (it installs Java and Maven)"
    PYTHON="$PYTHON" "$DEPLOY_DIR/stack.sh" kafka-jars
    local n
    for n in 1 2 3; do
        mkdir -p "$(node_dir "$n")"/{data,logs,run}
        render_node "$n"
    done
    format_all
}

cmd_up() {
    local started=$SECONDS n
    prepare
    for n in 1 2 3; do launch "$n"; done
    wait_for 3
    log "cluster ready in $((SECONDS - started))s: bootstrap.servers=$(bootstrap)"
}

cmd_signal() {
    local n="$1" signal="$2" pid i
    if ! pid="$(node_pid "$n")"; then
        log "node $n: not running"
        return 0
    fi
    kill "-$signal" "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "node $n: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$(node_dir "$n")/run/kafka.pid"
    log "node $n: stopped with SIG$signal (pid $pid)"
}

# cmd_down: SIGTERM the three nodes at once. One by one, the last two would
# wait out their grace period: a node's controlled shutdown needs the metadata
# quorum, which two stopped voters of three take away.
cmd_down() {
    local n pids=()
    for n in 1 2 3; do
        cmd_signal "$n" TERM &
        pids+=("$!")
    done
    wait "${pids[@]}"
}

cmd_start() {
    prepare
    launch "$1"
    wait_for 1 "$1"
}

# controller: the node that leads the metadata quorum, from each live node's
# quorum-state file (the highest epoch's leader).
cmd_controller() {
    local n file best_epoch=-1 leader="" epoch id
    for n in 1 2 3; do
        node_pid "$n" >/dev/null || continue
        file="$(node_dir "$n")/data/__cluster_metadata-0/quorum-state"
        [[ -r $file ]] || continue
        epoch="$(grep -o '"leaderEpoch":[0-9-]*' "$file" | cut -d: -f2)"
        id="$(grep -o '"leaderId":[0-9-]*' "$file" | cut -d: -f2)"
        if [[ -n $epoch && -n $id && $id -ge 1 && $epoch -gt $best_epoch ]]; then
            best_epoch="$epoch"
            leader="$id"
        fi
    done
    [[ -n $leader ]] || die "no live node knows a controller"
    printf '%s\n' "$leader"
}

cmd_status() {
    local n pid rc=0
    for n in 1 2 3; do
        if pid="$(node_pid "$n")"; then
            log "node $n  up    pid $pid  127.0.0.1:$(port_of "$n")"
        else
            log "node $n  down  127.0.0.1:$(port_of "$n")"
            rc=1
        fi
    done
    return "$rc"
}

usage() {
    sed -n 's/^# \{0,1\}//; 5,8p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

main() {
    local command="${1:-}" n
    case "$command" in
        up) cmd_up ;;
        down) cmd_down ;;
        clean)
            cmd_down
            rm -rf "$CLUSTER_DIR"
            log "cluster data deleted ($CLUSTER_DIR)"
            ;;
        kill | stop | start)
            [[ $# -eq 2 ]] || usage
            if [[ $command == kill && $2 == all ]]; then
                for n in 1 2 3; do cmd_signal "$n" KILL; done
                return 0
            fi
            check_node "$2"
            case "$command" in
                kill) cmd_signal "$2" KILL ;;
                stop) cmd_signal "$2" TERM ;;
                start) cmd_start "$2" ;;
            esac
            ;;
        controller) cmd_controller ;;
        bootstrap) bootstrap ;;
        status) cmd_status ;;
        *) usage ;;
    esac
}

main "$@"
