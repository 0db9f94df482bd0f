#!/usr/bin/env bash
# Helm for checking deploy/helm/mediaflow, built once from the Go module proxy
# and cached under the stack dir (no binary download: the build machine reaches
# package registries only).
#
# Usage: deploy/helm.sh ARGS...     run helm (building it first if needed)
#        deploy/helm.sh --path      build if needed, print the binary's path
#        deploy/helm.sh --cached    print the path if already built; exit 1 if not
#
# The first build takes about 3-4 minutes on two cores (`go install`, Go 1.24+
# needed); later runs reuse <stack dir>/tools/helm-<version>/helm.
# MEDIAFLOW_HELM names a helm v4 binary to use instead.
set -euo pipefail

HELM_VERSION="v4.3.2"
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$DEPLOY_DIR")"
STACK_DIR="$(realpath -m "${MEDIAFLOW_STACK_DIR:-$REPO_DIR/.stack}")"
TOOLS_DIR="$STACK_DIR/tools/helm-$HELM_VERSION"
HELM="${MEDIAFLOW_HELM:-$TOOLS_DIR/helm}"

die() { printf 'helm.sh: error: %s\n' "$*" >&2; exit 1; }

build() {
    command -v go >/dev/null 2>&1 ||
        die "go not found: Helm is built from source with Go 1.24+ (https://go.dev/dl/), or set MEDIAFLOW_HELM to a helm v4 binary"
    printf 'building Helm %s from the Go module proxy (once, ~3-4 min; cached in %s)...\n' \
        "$HELM_VERSION" "$TOOLS_DIR" >&2
    local tmp
    mkdir -p "$(dirname "$TOOLS_DIR")"
    tmp="$(mktemp -d "$(dirname "$TOOLS_DIR")/.helm-build.XXXXXX")"
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" EXIT
    GOBIN="$tmp" GOFLAGS=-mod=mod go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2 ||
        die "building Helm failed (is the Go module proxy reachable?)"
    # Swapped in whole, so an interrupted build never leaves a half-written binary.
    rm -rf "$TOOLS_DIR"
    mv "$tmp" "$TOOLS_DIR"
    trap - EXIT
}

case "${1:-}" in
    --cached)
        [[ -x $HELM ]] || exit 1
        printf '%s\n' "$HELM"
        ;;
    --path)
        [[ -x $HELM ]] || build
        printf '%s\n' "$HELM"
        ;;
    "")
        sed -n 's/^# \{0,1\}//; 5,7p' "${BASH_SOURCE[0]}" >&2
        exit 2
        ;;
    *)
        [[ -x $HELM ]] || build
        exec "$HELM" "$@"
        ;;
esac
