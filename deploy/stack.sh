#!/usr/bin/env bash
# Local development stack for mediaflow, without Docker: a single-node Kafka
# (KRaft) and S3Proxy (an S3-compatible server storing objects as plain files),
# both plain JVM processes whose jars Maven fetches once from Maven Central.
#
# Usage: deploy/stack.sh up|down|status|clean [kafka|s3|all] [--all]
#        deploy/stack.sh start-kafka|stop-kafka|start-s3|stop-s3
#        deploy/stack.sh kafka-jars   (fetch the Kafka jars only: deploy/cluster.sh runs them)
#
#   up      start the services that are not running, wait until they answer,
#           print the endpoints. A no-op for a service already running.
#   down    stop gracefully (SIGTERM, then SIGKILL after a grace period).
#   status  one line per service; exits 1 if any is down.
#   clean   down + delete the service's data and logs. `clean --all` also
#           deletes the jar cache (the next `up` fetches it again).
#
# Everything lives under the state dir ${MEDIAFLOW_STACK_DIR:-<repo>/.stack}:
#   jars/kafka, jars/s3proxy   jar cache (filled by `mvn dependency:copy-dependencies`)
#   kafka-data                 Kafka log.dirs (KRaft metadata + topic data)
#   s3-data/<bucket>/<key>     stored objects, browsable as files
#   logs/                      kafka.log (+ kafka.stdout: JVM output), s3proxy.log
#   run/                       pid files and rendered configs
#
# Environment (defaults in brackets):
#   MEDIAFLOW_KAFKA_PORT [9092]  broker port; the controller uses port+1
#   MEDIAFLOW_S3_PORT [9000]     S3 endpoint port
#   MEDIAFLOW_S3_ACCESS_KEY [mediaflow]  MEDIAFLOW_S3_SECRET_KEY [mediaflow-local-secret]
#   MEDIAFLOW_KAFKA_HEAP ["-Xms256m -Xmx768m"]  MEDIAFLOW_S3_HEAP ["-Xms64m -Xmx256m"]
#   MEDIAFLOW_STACK_TIMEOUT [90] seconds to wait for start-up
#   PYTHON [python3]             interpreter with confluent-kafka, for the Kafka readiness check
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/common.sh
source "$DEPLOY_DIR/common.sh"
REPO_DIR="$(dirname "$DEPLOY_DIR")"
STACK_DIR="${MEDIAFLOW_STACK_DIR:-$REPO_DIR/.stack}"
JARS_DIR="$STACK_DIR/jars"
LOG_DIR="$STACK_DIR/logs"
RUN_DIR="$STACK_DIR/run"
KAFKA_DATA_DIR="$STACK_DIR/kafka-data"
S3_DATA_DIR="$STACK_DIR/s3-data"

KAFKA_PORT="${MEDIAFLOW_KAFKA_PORT:-9092}"
CONTROLLER_PORT="$((KAFKA_PORT + 1))"
S3_PORT="${MEDIAFLOW_S3_PORT:-9000}"
S3_ACCESS_KEY="${MEDIAFLOW_S3_ACCESS_KEY:-mediaflow}"
S3_SECRET_KEY="${MEDIAFLOW_S3_SECRET_KEY:-mediaflow-local-secret}"
KAFKA_HEAP="${MEDIAFLOW_KAFKA_HEAP:--Xms256m -Xmx768m}"
S3_HEAP="${MEDIAFLOW_S3_HEAP:--Xms64m -Xmx256m}"
START_TIMEOUT="${MEDIAFLOW_STACK_TIMEOUT:-90}"
STOP_TIMEOUT=30
PYTHON="${PYTHON:-python3}"

# Main classes; also used to recognise our processes behind a pid file, so a
# recycled pid belonging to something else is never signalled.
KAFKA_MAIN="kafka.Kafka"
S3_MAIN="org.gaul.s3proxy.Main"

# Bash 5.2 treats `&` in ${var//pattern/replacement} as "the match"; we want
# literal replacement when rendering templates (a secret may contain `&`).
shopt -u patsub_replacement 2>/dev/null || true

# ---------------------------------------------------------------- helpers ---

log() { printf '%s\n' "$*"; }
die() { printf 'stack.sh: error: %s\n' "$*" >&2; exit 1; }

# install_java: as root on Debian, install the Java runtime and Maven once;
# anyone else is told, in one line, what to install.
install_java() {
    local packages="openjdk-17-jre-headless maven"
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "$1 not found: install a Java 17+ runtime and Maven (Debian: sudo apt-get install $packages) and re-run"
    fi
    log "installing Debian's $packages packages (once)..."
    apt-get update -qq
    # shellcheck disable=SC2086  # two package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
}

require_java() {
    command -v java >/dev/null 2>&1 || install_java java
}

require_mvn() {
    command -v mvn >/dev/null 2>&1 || install_java mvn
}

# http_answers PORT: true if an HTTP server answers on 127.0.0.1:PORT (any
# status: S3Proxy answers an unsigned request with 403, which is fine here).
http_answers() {
    # shellcheck disable=SC2016  # expanded by the inner shell; the port is its $0
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" >&3
        IFS= read -r status <&3 && [[ $status == HTTP/* ]]' "$1" 2>/dev/null
}

# our_pid NAME MAIN_CLASS: print the pid from run/NAME.pid if that process is
# alive and is really our JVM; fail otherwise.
our_pid() {
    local pidfile="$RUN_DIR/$1.pid" pid cmdline
    [[ -s $pidfile ]] || return 1
    pid="$(<"$pidfile")"
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    else
        cmdline="$(ps -p "$pid" -o args= 2>/dev/null || true)"
    fi
    [[ $cmdline == *"$2"* ]] || return 1
    printf '%s\n' "$pid"
}

# render TEMPLATE OUTPUT TOKEN=VALUE...: copy TEMPLATE to OUTPUT replacing @TOKEN@.
render() {
    local template="$1" output="$2" text pair
    shift 2
    text="$(<"$template")"
    for pair in "$@"; do
        text="${text//@${pair%%=*}@/${pair#*=}}"
    done
    (umask 077 && printf '%s\n' "$text" >"$output")
}

# tail_logs FILE...: show the end of the logs that explain a failed start.
tail_logs() {
    local file
    for file in "$@"; do
        [[ -s $file ]] || continue
        printf '\n--- last lines of %s ---\n' "$file" >&2
        tail -n 25 "$file" >&2
    done
}

# fetch_jars NAME: fill jars/NAME from deploy/NAME/pom.xml, once. A marker file
# holding the pom's checksum records a complete fetch; editing the pom (e.g. a
# version bump) fetches again. Offline first, so a warm ~/.m2 needs no network.
fetch_jars() {
    local name="$1" pom="$DEPLOY_DIR/$1/pom.xml" dest="$JARS_DIR/$1"
    local marker="$dest/.fetched" sum tmp
    sum="$(sha256sum "$pom" | cut -d' ' -f1)"
    [[ -f $marker && "$(<"$marker")" == "$sum" ]] && return 0
    require_mvn
    log "fetching $name jars with Maven (once; cached in $dest)..."
    tmp="$JARS_DIR/.$name.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    local -a mvn_args=(-q -B -f "$pom" dependency:copy-dependencies "-DoutputDirectory=$tmp")
    if ! mvn -o "${mvn_args[@]}" >/dev/null 2>&1; then
        mvn "${mvn_args[@]}" >"$LOG_DIR/mvn-$name.log" 2>&1 || {
            tail_logs "$LOG_DIR/mvn-$name.log"
            die "Maven could not fetch the $name jars (is Maven Central reachable?); see $LOG_DIR/mvn-$name.log"
        }
    fi
    # Swap in the complete folder only now, so an interrupted fetch never
    # leaves a half-filled cache that looks usable.
    rm -rf "$dest"
    mv "$tmp" "$dest"
    printf '%s\n' "$sum" >"$marker"
}

# start_jvm NAME MAIN_CLASS OUTPUT JVM_ARGS...: launch detached (own session,
# so a Ctrl-C in the calling terminal does not reach it), stdout and stderr
# appended to OUTPUT, and record its pid. The inner shell writes its own pid
# and then execs java, so the pid recorded is java's.
start_jvm() {
    local name="$1" main="$2" output="$3"
    shift 3
    rm -f "$RUN_DIR/$name.pid"
    # A marker, so the tail shown after a failed start is read from the right line.
    printf '=== %s: started by deploy/stack.sh ===\n' "$(date '+%F %T')" >>"$output"
    # Kafka keeps several files open per partition: allow as many as the system lets us.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    # shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN_DIR/$name.pid" java "$@" \
        </dev/null >>"$output" 2>&1 &
    local i
    for i in {1..50}; do
        our_pid "$name" "$main" >/dev/null && return 0
        sleep 0.1
    done
    tail_logs "$output"
    die "$name did not start; see $output"
}

# stop_service NAME MAIN_CLASS: SIGTERM (Kafka does a controlled shutdown and
# flushes its logs), wait, then SIGKILL.
stop_service() {
    local name="$1" main="$2" pid i
    if ! pid="$(our_pid "$name" "$main")"; then
        rm -f "$RUN_DIR/$name.pid"
        log "$name: not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$RUN_DIR/$name.pid"
    log "$name: stopped (pid $pid)"
}

# ------------------------------------------------------------------ kafka ---

kafka_running() { our_pid kafka "$KAFKA_MAIN" >/dev/null && port_open "$KAFKA_PORT"; }

# kafka_answers: a metadata request succeeds (the port alone opens before the
# broker has caught up with the KRaft metadata log and can serve requests).
kafka_answers() {
    if "$PYTHON" -c 'import confluent_kafka' 2>/dev/null; then
        "$PYTHON" - "127.0.0.1:$KAFKA_PORT" 2>/dev/null <<'EOF'
import sys
from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
admin.list_topics(timeout=2)
EOF
    elif command -v kcat >/dev/null 2>&1; then
        kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 2 >/dev/null 2>&1
    else
        # Without a Kafka client, settle for the listener accepting connections.
        port_open "$KAFKA_PORT"
    fi
}

# new_cluster_id: a random KRaft cluster id, what `kafka-storage.sh random-uuid`
# prints (16 random bytes, base64url without padding, not starting with "-"),
# without paying for a JVM start.
new_cluster_id() {
    local id
    until [[ ${id:-} && $id != -* ]]; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    printf '%s\n' "$id"
}

start_kafka() {
    local pid
    if pid="$(our_pid kafka "$KAFKA_MAIN")"; then
        # Running (or still starting: the caller's wait covers that).
        log "kafka: already running (pid $pid)"
        return 0
    fi
    if port_open "$KAFKA_PORT"; then
        die "$(port_taken_message "$KAFKA_PORT" Kafka MEDIAFLOW_KAFKA_PORT)"
    fi
    if port_open "$CONTROLLER_PORT"; then
        die "$(port_taken_message "$CONTROLLER_PORT" "Kafka controller" MEDIAFLOW_KAFKA_PORT)"
    fi
    require_java
    fetch_jars kafka

    render "$DEPLOY_DIR/kafka/server.properties.template" "$RUN_DIR/server.properties" \
        "KAFKA_PORT=$KAFKA_PORT" "CONTROLLER_PORT=$CONTROLLER_PORT" "KAFKA_DATA_DIR=$KAFKA_DATA_DIR"
    local -a jvm=(-cp "$JARS_DIR/kafka/*"
        "-Dlog4j2.configurationFile=$DEPLOY_DIR/kafka/log4j2.xml"
        "-Dkafka.logs.dir=$LOG_DIR" -Djava.awt.headless=true)

    # KRaft storage is formatted once, with a fresh cluster id; meta.properties
    # marks a formatted log dir.
    if [[ ! -f $KAFKA_DATA_DIR/meta.properties ]]; then
        local cluster_id
        cluster_id="$(new_cluster_id)"
        java "${jvm[@]}" kafka.tools.StorageTool format \
            --cluster-id "$cluster_id" --config "$RUN_DIR/server.properties" --ignore-formatted \
            >>"$LOG_DIR/kafka.stdout" 2>&1 || {
            tail_logs "$LOG_DIR/kafka.stdout"
            die "formatting Kafka storage in $KAFKA_DATA_DIR failed; see $LOG_DIR/kafka.stdout"
        }
    fi

    # shellcheck disable=SC2206  # the heap setting is deliberately word-split
    local -a heap=($KAFKA_HEAP)
    # kafka.log is written by log4j2; kafka.stdout catches what the JVM prints
    # before logging is set up (bad options, a crash).
    start_jvm kafka "$KAFKA_MAIN" "$LOG_DIR/kafka.stdout" "${heap[@]}" \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
        "${jvm[@]}" "$KAFKA_MAIN" "$RUN_DIR/server.properties"
    log "kafka: started (pid $(<"$RUN_DIR/kafka.pid"))"
}

# ---------------------------------------------------------------- s3proxy ---

s3_running() { our_pid s3proxy "$S3_MAIN" >/dev/null && port_open "$S3_PORT"; }

start_s3() {
    local pid
    if pid="$(our_pid s3proxy "$S3_MAIN")"; then
        log "s3proxy: already running (pid $pid)"
        return 0
    fi
    if port_open "$S3_PORT"; then
        die "$(port_taken_message "$S3_PORT" S3Proxy MEDIAFLOW_S3_PORT)"
    fi
    require_java
    fetch_jars s3proxy

    render "$DEPLOY_DIR/s3proxy/s3proxy.properties.template" "$RUN_DIR/s3proxy.properties" \
        "S3_PORT=$S3_PORT" "S3_ACCESS_KEY=$S3_ACCESS_KEY" "S3_SECRET_KEY=$S3_SECRET_KEY" \
        "S3_DATA_DIR=$S3_DATA_DIR"
    # shellcheck disable=SC2206  # the heap setting is deliberately word-split
    local -a heap=($S3_HEAP)
    start_jvm s3proxy "$S3_MAIN" "$LOG_DIR/s3proxy.log" "${heap[@]}" -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError \
        "-Dlogback.configurationFile=$DEPLOY_DIR/s3proxy/logback.xml" \
        -cp "$JARS_DIR/s3proxy/*" "$S3_MAIN" --properties "$RUN_DIR/s3proxy.properties"
    log "s3proxy: started (pid $(<"$RUN_DIR/s3proxy.pid"))"
}

# ------------------------------------------------------------------- wait ---

# wait_until NAME MAIN_CLASS CHECK LOG...: poll CHECK until it succeeds; fail
# early if the process died, or at the deadline, showing the log's tail.
wait_until() {
    local name="$1" main="$2" check="$3" deadline=$((SECONDS + START_TIMEOUT))
    shift 3
    until "$check"; do
        if ! our_pid "$name" "$main" >/dev/null; then
            tail_logs "$@"
            die "$name exited during start-up; see $1"
        fi
        if ((SECONDS >= deadline)); then
            tail_logs "$@"
            die "$name did not answer within ${START_TIMEOUT}s; see $1. It is left running" \
                "(pid $(our_pid "$name" "$main")): \`$0 up\` waits for it again, \`$0 down\` stops it;" \
                "MEDIAFLOW_STACK_TIMEOUT raises the limit"
        fi
        sleep 0.5
    done
}

s3_answers() { http_answers "$S3_PORT"; }

# ------------------------------------------------------------- commands ---

cmd_up() {
    local target="$1" started=$SECONDS
    mkdir -p "$JARS_DIR" "$LOG_DIR" "$RUN_DIR" "$KAFKA_DATA_DIR" "$S3_DATA_DIR"
    # Start both before waiting for either: the JVMs boot in parallel.
    [[ $target == s3 ]] || start_kafka
    [[ $target == kafka ]] || start_s3
    if [[ $target != s3 ]]; then
        wait_until kafka "$KAFKA_MAIN" kafka_answers "$LOG_DIR/kafka.log" "$LOG_DIR/kafka.stdout"
    fi
    if [[ $target != kafka ]]; then
        wait_until s3proxy "$S3_MAIN" s3_answers "$LOG_DIR/s3proxy.log"
    fi
    log "stack ready in $((SECONDS - started))s"
    [[ $target == s3 ]] || log "  kafka   bootstrap.servers=127.0.0.1:$KAFKA_PORT"
    [[ $target == kafka ]] ||
        log "  s3      endpoint=http://127.0.0.1:$S3_PORT access_key=$S3_ACCESS_KEY secret_key=**** (MEDIAFLOW_S3_SECRET_KEY) (objects under $S3_DATA_DIR)"
}

cmd_down() {
    local target="$1"
    [[ $target == kafka ]] || stop_service s3proxy "$S3_MAIN"
    [[ $target == s3 ]] || stop_service kafka "$KAFKA_MAIN"
}

cmd_status() {
    local target="$1" rc=0 pid
    if [[ $target != s3 ]]; then
        if kafka_running; then
            pid="$(our_pid kafka "$KAFKA_MAIN")"
            log "kafka    up    pid $pid  127.0.0.1:$KAFKA_PORT"
        else
            log "kafka    down  127.0.0.1:$KAFKA_PORT"
            rc=1
        fi
    fi
    if [[ $target != kafka ]]; then
        if s3_running; then
            pid="$(our_pid s3proxy "$S3_MAIN")"
            log "s3proxy  up    pid $pid  http://127.0.0.1:$S3_PORT"
        else
            log "s3proxy  down  http://127.0.0.1:$S3_PORT"
            rc=1
        fi
    fi
    return "$rc"
}

cmd_clean() {
    local target="$1" jars="$2"
    cmd_down "$target"
    if [[ $target != s3 ]]; then
        rm -rf "$KAFKA_DATA_DIR" "$RUN_DIR/server.properties" "$LOG_DIR"/kafka.*
        log "kafka: data deleted ($KAFKA_DATA_DIR)"
    fi
    if [[ $target != kafka ]]; then
        rm -rf "$S3_DATA_DIR" "$RUN_DIR/s3proxy.properties" "$LOG_DIR"/s3proxy.*
        log "s3proxy: data deleted ($S3_DATA_DIR)"
    fi
    if [[ $jars == yes ]]; then
        rm -rf "$JARS_DIR" "$LOG_DIR"/mvn-*.log
        log "jar cache deleted ($JARS_DIR)"
    fi
}

usage() {
    sed -n 's/^# \{0,1\}//; 6,8p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

main() {
    local command="${1:-}" target="all" jars="no" arg
    [[ -n $command ]] || usage
    shift
    case "$command" in
        start-kafka) command=up target=kafka ;;
        stop-kafka) command=down target=kafka ;;
        start-s3) command=up target=s3 ;;
        stop-s3) command=down target=s3 ;;
    esac
    for arg in "$@"; do
        case "$arg" in
            kafka | s3 | all) target="$arg" ;;
            --all) jars="yes" ;;
            *) usage ;;
        esac
    done
    case "$command" in
        kafka-jars) mkdir -p "$JARS_DIR" "$LOG_DIR" && fetch_jars kafka ;;
        up) cmd_up "$target" ;;
        down) cmd_down "$target" ;;
        status) cmd_status "$target" ;;
        clean) cmd_clean "$target" "$jars" ;;
        *) usage ;;
    esac
}

main "$@"
