#!/usr/bin/env bash
# Check deploy/docker-compose.yml with Docker Compose itself: `config` parses,
# validates against Compose's schema, interpolates and merges the file (both
# with and without the demo profile) and needs no Docker engine.
#
# Usage: deploy/compose-config.sh
#
# Uses `docker compose` (the v2 plugin) when present, else `docker-compose`.
# Neither installed: as root on Debian, installs the docker-compose package
# once; anyone else is told what to install, and the script exits 3.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPOSE_FILE="$DEPLOY_DIR/docker-compose.yml"

compose_command() {
    if docker compose version >/dev/null 2>&1; then
        printf '%s\n' "docker compose"
    elif command -v docker-compose >/dev/null 2>&1; then
        printf '%s\n' "docker-compose"
    else
        return 1
    fi
}

install_compose() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        printf 'compose-config.sh: Docker Compose not found; install it (Debian: sudo apt-get install docker-compose) to check %s\n' \
            "$COMPOSE_FILE" >&2
        exit 3
    fi
    echo "installing Debian's docker-compose package (once)..."
    # A fresh container has no package lists yet.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
    fi
}

compose="$(compose_command)" || { install_compose; compose="$(compose_command)"; }
# shellcheck disable=SC2086  # "docker compose" is two words
$compose -f "$COMPOSE_FILE" config -q
# shellcheck disable=SC2086
$compose -f "$COMPOSE_FILE" --profile demo config -q
echo "$COMPOSE_FILE: valid for $($compose version --short 2>/dev/null || $compose version | head -n 1)"
