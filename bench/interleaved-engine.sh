#!/usr/bin/env bash
# interleaved-engine.sh — the engine bench with 1 MiB batches interleaved with fio 1 MiB qd32
# overwrites of a prefilled file (machine-limits.sh job), three rounds, so each engine figure
# has a disk figure measured right before it (the disk drifts by up to 3x between minutes).
# Usage: bench/interleaved-engine.sh SITTING   (needs fio and jq; writes bench/results/*-SITTING*)
set -euo pipefail
D="${1:?sitting name, e.g. 2026-11-25-f}"
cd "$(dirname "$0")/.."
out=bench/results/interleaved-$D.txt
: > $out
for i in 1 2 3; do
  mkdir -p target/fiot
  fio --name=ow --filename=target/fiot/o.dat --ioengine=io_uring --direct=1 --rw=write --size=1G --bs=1M --iodepth=32 --output-format=json >/dev/null
  echo "fio 1 MiB qd32 overwrite (round $i): $(fio --name=ow --filename=target/fiot/o.dat --ioengine=io_uring --direct=1 --rw=write --size=1G --runtime=8 --ramp_time=1 --time_based --bs=1M --iodepth=32 --output-format=json | jq -r '.jobs[0].write.bw_bytes/1e6|round') MB/s" >> $out
  rm -rf target/fiot
  ./target/release/cfa bench --engine --duration-s 7 --batch-bytes 1048576 --json bench/results/engine-bench-$D-$i.json 2>&1 | grep -E "^(scenario|written|durable)" | head -3 >> $out
done
echo done >> $out
