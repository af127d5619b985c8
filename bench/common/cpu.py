"""CPU accounting from /proc: per process tree, and the busy time of the whole machine.

No extra dependency: ``/proc/<pid>/stat`` and ``/proc/stat``, in clock ticks."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    ppid: int
    ticks: int  # own utime + stime
    reaped: int  # cutime + cstime: the children it has waited for
    start: int  # start time: tells a reused pid apart


def read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces or ")": split after the last ")".
    f = raw[raw.rfind(b")") + 2 :].split()
    if len(f) < 20:  # an exiting process may leave an empty file behind
        return None
    return Proc(int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]), int(f[19]))


def snapshot(roots: tuple[int, ...] = ()) -> dict[int, Proc]:
    """Every process. Retried while one of the roots reaps a child during the scan: a
    child reaped after the root was read but before its own entry would be in neither."""
    for _ in range(50):
        before = [read_proc(r) for r in roots]
        procs = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                p = read_proc(int(name))
                if p is not None:
                    procs[int(name)] = p
        after = [read_proc(r) for r in roots]
        if [p and p.reaped for p in before] == [p and p.reaped for p in after]:
            break
        time.sleep(0.02)  # children are exiting (pgbench's backends at its end): let them
    return procs


def tree_ticks(procs: dict[int, Proc], root: int) -> int:
    """CPU of a process tree so far: each live member's own time plus what it has reaped.

    A member that exits is added to its parent's reaped time by the kernel at wait(),
    so the difference of two readings also covers members that started or ended
    in between (as long as the root lives)."""
    kids: dict[int, list[int]] = {}
    for pid, p in procs.items():
        kids.setdefault(p.ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            total += procs[pid].ticks + procs[pid].reaped
            todo.extend(kids.get(pid, ()))
    return total


def machine_busy() -> int:
    """Busy ticks of all cores (user nice system irq softirq; guest is inside user)."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6]


def ms(ticks: float) -> float:
    return ticks * 1000 / CLK_TCK
