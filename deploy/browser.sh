#!/usr/bin/env bash
# The headless browser the dashboard's browser tests drive: Debian's chromium,
# installed with apt when missing and we are root (Playwright then uses it
# through executable_path; no browser download of its own). Prints its path.
# Usage: deploy/browser.sh        (make test runs it)
set -euo pipefail

found="$(command -v chromium || true)"
if [ -z "$found" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "browser.sh: installing Debian's chromium (once)..." >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        found="$(command -v chromium)"
    else
        echo "browser.sh: chromium is missing; install it (apt-get install chromium) as root" >&2
        exit 1
    fi
fi
echo "$found"
