#!/usr/bin/env bash
# fio-fresh-file.sh — the disk limits a log actually meets: O_DIRECT writes that append
# into a freshly fallocated file (unwritten ext4 extents, converted as data lands), which
# is what a new segment is. ../shared/tools/machine-limits.sh measures overwrites of a
# prefilled file instead; run both in the same sitting as `cfa bench`.
#
# Usage: bench/fio-fresh-file.sh [TARGET_DIR]   (default target/; needs fio and jq, which
#        machine-limits.sh installs). A temp dir is created inside and removed on exit.
# Output: two lines of figures; MB/s are 10^6 bytes/s, latencies microseconds.

set -euo pipefail

RUNTIME_S="${ML_RUNTIME_S:-8}"
TARGET="${1:-target}"
mkdir -p "$TARGET"
WORK="$(mktemp -d "$TARGET/fio-fresh.XXXXXX")"
trap 'rm -rf -- "$WORK"' EXIT

# fresh NAME SIZE [fio options...]: one job on a new file (fio fallocates it first), not
# time based, so every byte lands on never-written extents; stops at SIZE or RUNTIME_S.
fresh() {
    local name="$1" size="$2"; shift 2
    fio --name="$name" --filename="$WORK/$name.dat" --ioengine=io_uring --direct=1 \
        --rw=write --size="$size" --runtime="$RUNTIME_S" --output-format=json "$@" \
        > "$WORK/$name.json"
    rm -f -- "$WORK/$name.dat"
}

# q NAME FILTER: evaluates FILTER against jobs[0] of a report.
q() { jq -r ".jobs[0] | $2" "$WORK/$1.json"; }
pct() { q "$1" "(.$2.percentile[\"$3\"] // 0) / 1000 | round"; }

fresh append_1m_qd32 4G --bs=1M --iodepth=32
fresh append_64k_fdatasync_qd1 1G --bs=64k --iodepth=1 --fdatasync=1 --lat_percentiles=1

echo "fresh-file append 1MiB qd32 (fallocate): $(q append_1m_qd32 '.write.bw_bytes / 1e6 | round') MB/s"
n=append_64k_fdatasync_qd1
echo "fresh-file 64KiB append+fdatasync qd1: $(q $n '.write.bw_bytes / 1e6 | round') MB/s," \
    "$(q $n '.write.iops | round') cycles/s," \
    "write lat (submit to completion) p50 $(pct $n write.lat_ns 50.000000) us p99 $(pct $n write.lat_ns 99.000000) us," \
    "fdatasync p50 $(pct $n sync.lat_ns 50.000000) us p99 $(pct $n sync.lat_ns 99.000000) us"
