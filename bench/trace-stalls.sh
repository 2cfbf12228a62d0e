#!/usr/bin/env bash
# trace-stalls.sh — who waits, and on what, during one bench run: traces the scheduler
# (sched_switch with a kernel stack at every switch into D state, sched_wakeup) through
# one run of a workload, then prints wake-up-to-running latency per thread group, the
# kernel stacks the process's threads slept on in D state (count, total, max), and the
# longest sleeps of the broker's executors and io_uring workers. Found the executors
# asleep in unlink and fsync (bench/REPORT.md, seventeenth session).
# Usage (root, tracefs at /sys/kernel/tracing):
#   bench/trace-stalls.sh WORKLOAD [SECONDS_TRACED]   e.g. bench/trace-stalls.sh durable-1kb 12
set -euo pipefail
W="${1:?a workload name or file}"
S="${2:-12}"
T=/sys/kernel/tracing
cd "$(dirname "$0")/.."
out=target/trace-stalls.txt
mkdir -p target
cleanup() {
  echo 0 > $T/tracing_on
  echo 0 > $T/events/sched/sched_switch/enable
  echo 0 > $T/events/sched/sched_wakeup/enable
  echo '!stacktrace if prev_state == 2' > $T/events/sched/sched_switch/trigger 2>/dev/null || true
}
trap cleanup EXIT
echo 0 > $T/tracing_on
echo > $T/trace
echo 150000 > $T/buffer_size_kb
echo 'stacktrace if prev_state == 2' > $T/events/sched/sched_switch/trigger
echo 1 > $T/events/sched/sched_switch/enable
echo 1 > $T/events/sched/sched_wakeup/enable
./target/release/cfa bench --workload "$W" --no-save --json target/trace-stalls.json > target/trace-stalls.log 2>&1 &
pid=$!
sleep 2.5 # broker start and the first of the warm-up
echo 1 > $T/tracing_on
sleep "$S"
echo 0 > $T/tracing_on
wait $pid
cat $T/trace > $out
grep -E "records/sec|broker measured" target/trace-stalls.log || true
python3 bench/trace_stalls.py $out
