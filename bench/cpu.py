"""CPU accounting (/proc): who used the two cores during a phase."""

from __future__ import annotations

import os
import time
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


def cpu_snapshot(api_pgid: int, postmaster: int) -> CpuSnapshot:
    api = pg = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        rest = text[text.rindex(")") + 2 :].split()
        ppid, pgrp = int(rest[1]), int(rest[2])
        seconds = (int(rest[11]) + int(rest[12])) / _CLOCK_TICKS
        if pgrp == api_pgid:
            api += seconds
        elif int(entry.name) == postmaster or ppid == postmaster:
            pg += seconds
    busy, total = _machine_times()
    return CpuSnapshot(api, pg, time.process_time(), busy, total)
