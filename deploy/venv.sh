#!/usr/bin/env bash
# Create the project's virtualenv (called by `make venv` when it is missing).
#
# Usage: deploy/venv.sh PYTHON DIR
#
# Debian ships Python's venv module in a package of its own (python3-venv): as
# root it is installed when missing; anyone else is told, in one line, what to
# install.
set -euo pipefail

python="$1" dir="$2"

die() { printf 'venv.sh: error: %s\n' "$*" >&2; exit 1; }

command -v "$python" >/dev/null 2>&1 ||
    die "$python not found: mediaflow needs Python 3.11+ (Debian 12: sudo apt-get install python3 python3-venv)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "mediaflow needs Python 3.11+, and $python is $("$python" -V 2>&1); set PYTHON_BIN to a newer one"

if ! "$python" -m venv "$dir" >/dev/null 2>&1; then
    rm -rf "$dir"
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "$python cannot create a virtualenv: install its venv module (Debian: sudo apt-get install python3-venv) and re-run"
    fi
    echo "installing Debian's python3-venv package (once)..."
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    "$python" -m venv "$dir"
fi
