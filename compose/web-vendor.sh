#!/usr/bin/env bash
#
# compose/web-vendor.sh - the web app's third-party JavaScript, from the npm registry.
#
# The app has no build step and needs no Node toolchain to run: the few library files it
# uses are committed under command-api/web/assets/vendor/ with their licences, and this
# script is how they got there. The browser tests' accessibility checker (axe-core) is not
# committed; it is fetched at test time into the cache.
#
# Usage:
#   compose/web-vendor.sh check    verify the committed files against the hashes below
#   compose/web-vendor.sh fetch    fetch the packages with `npm pack`, check the hashes,
#                                  copy the files into the vendor folder
#   compose/web-vendor.sh axe      fetch axe-core (once) into the cache; print axe.min.js's path
#
# Environment: TICKETING_CACHE_DIR (default ~/.cache/ticketing). Needs `npm` for fetch/axe.
#
# To upgrade a library: change its version and hash below, run `fetch`, read the diff.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENDOR="$ROOT/command-api/web/assets/vendor"
AXE_VERSION="4.14.1"
AXE_SHA256="29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"

# package@version  file in the package  name in vendor/  sha256
FILES=(
    "partysocket@1.3.0 dist/ws.js reconnecting-websocket.js ee2e667894cdefd41fd94aaffac90d81bd8a8383ce7a63655c2346246e15cdc5"
    "partysocket@1.3.0 LICENSE.txt partysocket.LICENSE.txt b1f92bb70b364fd4ee2deb28c7805dca6744285c1599d3d0b40b42164c757082"
    "uplot@1.6.32 dist/uPlot.esm.js uplot.esm.js 5dd9b3281aa64b461b42d9945f6adb2649d346502b12281a9ae0d46599a80eba"
    "uplot@1.6.32 dist/uPlot.min.css uplot.min.css df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04"
    "uplot@1.6.32 LICENSE uplot.LICENSE.txt 8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd"
)

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# Unpacks package@version (npm pack) into a fresh folder and prints its path.
unpack() {
    local spec=$1 dir tarball
    command -v npm >/dev/null 2>&1 || die "npm not found (compose/install-deps.sh installs it)"
    dir=$(mktemp -d)
    tarball=$(cd "$dir" && npm pack --silent "$spec" 2>/dev/null | tail -n1) ||
        die "npm could not fetch $spec"
    tar xzf "$dir/$tarball" -C "$dir"
    printf '%s\n' "$dir/package"
}

cmd_check() {
    local line spec file name sum bad=0
    for line in "${FILES[@]}"; do
        read -r spec file name sum <<<"$line"
        if [[ "$(sha256_of "$VENDOR/$name")" != "$sum" ]]; then
            warn "$name differs from $spec $file"
            bad=1
        fi
    done
    ((bad == 0)) || die "vendored files do not match their packages"
    log "vendored files match their packages"
}

cmd_fetch() {
    local line spec file name sum dir
    declare -A unpacked=()
    for line in "${FILES[@]}"; do
        read -r spec file name sum <<<"$line"
        [[ -n ${unpacked[$spec]:-} ]] || unpacked[$spec]=$(unpack "$spec")
        dir=${unpacked[$spec]}
        [[ "$(sha256_of "$dir/$file")" == "$sum" ]] || die "$spec $file: hash mismatch"
        cp "$dir/$file" "$VENDOR/$name"
        log "$spec $file -> vendor/$name"
    done
}

cmd_axe() {
    local target="$CACHE_DIR/axe-core-$AXE_VERSION/axe.min.js" dir
    if [[ ! -f $target || "$(sha256_of "$target")" != "$AXE_SHA256" ]]; then
        dir=$(unpack "axe-core@$AXE_VERSION")
        [[ "$(sha256_of "$dir/axe.min.js")" == "$AXE_SHA256" ]] || die "axe-core $AXE_VERSION: hash mismatch"
        mkdir -p "$(dirname "$target")"
        cp "$dir/axe.min.js" "$target.tmp"
        mv "$target.tmp" "$target"
        log "axe-core $AXE_VERSION in $target"
    fi
    printf '%s\n' "$target"
}

case "${1:-}" in
check) cmd_check ;;
fetch) cmd_fetch ;;
axe) cmd_axe ;;
*) die "usage: $0 check|fetch|axe" ;;
esac
