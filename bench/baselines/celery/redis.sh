#!/usr/bin/env bash
# The Celery baseline's broker: Debian's redis-server on a private port with its
# own directory, configured as a broker that must not lose a queued task
# (append-only file, fsync every second). Installed with apt when missing and we
# are root, as deploy/browser.sh does for chromium.
# Usage: redis.sh up|down DIR PORT   (down: SHUTDOWN, which writes the data first)
set -euo pipefail

action="$1" dir="$2" port="$3"
if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "redis.sh: installing Debian's redis-server (once)..." >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "redis.sh: redis-server is missing; install it (apt-get install redis-server) as root" >&2
        exit 1
    fi
fi
mkdir -p "$dir"
case "$action" in
up)
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --appendonly yes --appendfsync everysec --save "" --protected-mode yes
    for _ in $(seq 50); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && exit 0
        sleep 0.2
    done
    echo "redis.sh: redis-server did not answer on port $port; see $dir/redis.log" >&2
    exit 1
    ;;
down)
    redis-cli -p "$port" shutdown >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 || exit 0
        sleep 0.2
    done
    echo "redis.sh: redis-server on port $port did not stop" >&2
    exit 1
    ;;
*)
    echo "usage: redis.sh up|down DIR PORT" >&2
    exit 2
    ;;
esac
