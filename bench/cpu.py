"""CPU accounting (/proc): who used the two cores during a phase."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    api: float
    postgres: float
    client: float
    machine_busy: float
    machine_total: float


def _machine_times() -> tuple[float, float]:
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


@dataclass(frozen=True)
class ProcessCpu:
    pid: int
    parent: int
    group: int
    command: str
    seconds: float  # user and system CPU time so far


def processes() -> Iterator[ProcessCpu]:
    """Every live process of the machine with its CPU time so far (/proc/<pid>/stat)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        rest = text[text.rindex(")") + 2 :].split()
        yield ProcessCpu(
            pid=int(entry.name),
            parent=int(rest[1]),
            group=int(rest[2]),
            command=text[text.index("(") + 1 : text.rindex(")")],
            seconds=(int(rest[11]) + int(rest[12])) / _CLOCK_TICKS,
        )


def cpu_snapshot(api_pgid: int, postmaster: int) -> CpuSnapshot:
    api = pg = 0.0
    for process in processes():
        if process.group == api_pgid:
            api += process.seconds
        elif postmaster in (process.pid, process.parent):
            pg += process.seconds
    busy, total = _machine_times()
    return CpuSnapshot(api, pg, time.process_time(), busy, total)


def tree_cpu(root: int) -> list[ProcessCpu]:
    """`root` and every live process below it. Children started by a benchmark (its local
    stack, operator and api) are all below the benchmark's own process, so other work on the
    machine is left out."""
    by_pid: dict[int, ProcessCpu] = {}
    children: dict[int, list[int]] = {}
    for process in processes():
        by_pid[process.pid] = process
        children.setdefault(process.parent, []).append(process.pid)
    below: list[ProcessCpu] = []
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        if pid in by_pid:
            below.append(by_pid[pid])
            frontier += children.get(pid, [])
    return below
