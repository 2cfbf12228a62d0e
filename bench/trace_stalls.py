#!/usr/bin/env python3
"""Reads an ftrace of sched_switch (with stacks at switches into D state) and
sched_wakeup, as bench/trace-stalls.sh records it, and prints where threads waited.

Thread groups are names up to their first digit (cfa-shard-0-1 -> cfa-shard), as in
the bench's `cpu_cores_by_thread`."""
import collections
import re
import sys

WAKE = re.compile(r'\s(\d+\.\d+): sched_wakeup: comm=(.+?) pid=(\d+)')
SWITCH = re.compile(r'\s(\d+\.\d+): sched_switch: prev_comm=(.+?) prev_pid=(\d+) '
                    r'prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.+?) next_pid=(\d+)')


def group(name):
    return re.match(r'[^0-9]*', name).group(0).rstrip('-/:') or name


def pct(v, q):
    return v[min(len(v) - 1, int(len(v) * q))] * 1e3


def main(path):
    lines = open(path).read().split('\n')
    woken, slept = {}, {}
    run_lat = collections.defaultdict(list)
    d_stacks = collections.defaultdict(list)
    sleeps = []
    for i, line in enumerate(lines):
        m = SWITCH.search(line)
        if m:
            t = float(m.group(1))
            prev, prev_pid, state, nxt = m.group(2), m.group(3), m.group(4), m.group(6)
            if state[0] in 'DS':
                stack = []
                if state[0] == 'D' and i + 1 < len(lines) and '<stack trace>' in lines[i + 1]:
                    j = i + 2
                    while j < len(lines) and lines[j].startswith(' =>'):
                        stack.append(lines[j][4:].strip().split('+')[0])
                        j += 1
                slept[prev_pid] = (t, prev, state[0], tuple(stack[4:12]))
            if nxt in woken:
                t0, name = woken.pop(nxt)
                run_lat[group(name)].append(t - t0)
            continue
        m = WAKE.search(line)
        if m:
            t, name, pid = float(m.group(1)), m.group(2), m.group(3)
            woken.setdefault(pid, (t, name))
            if pid in slept:
                t0, name, state, stack = slept.pop(pid)
                sleeps.append((t - t0, t0, name, state))
                if state == 'D':
                    d_stacks[(group(name), ' < '.join(stack))].append(t - t0)
    print('wake-up to running, ms (p50 / p99 / max), per thread group:')
    for g, v in sorted(run_lat.items(), key=lambda x: -len(x[1])):
        if len(v) >= 50:
            v.sort()
            print(f'  {g:<18} {len(v):>8}  {pct(v, .5):7.3f} {pct(v, .99):7.3f} {v[-1] * 1e3:8.2f}')
    print('D-state sleeps by kernel stack (count, total ms, max ms), largest total first:')
    for (g, stack), v in sorted(d_stacks.items(), key=lambda x: -sum(x[1]))[:12]:
        print(f'  {g:<14} {len(v):>7} {sum(v) * 1e3:9.1f} {max(v) * 1e3:8.2f}  {stack[:160]}')
    print('longest sleeps of executors and io_uring workers (ms, state, start, thread):')
    mine = [s for s in sleeps if s[2].startswith(('cfa-shard', 'iou-wrk'))]
    for d, t0, name, state in sorted(mine, reverse=True)[:10]:
        print(f'  {d * 1e3:9.1f} {state} {t0:.3f} {name}')


if __name__ == '__main__':
    main(sys.argv[1])
