"""The api process's factory: the api unchanged, plus a probe of its garbage collector.

Imported by the api process, so it imports nothing but the standard library and the api."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from pathlib import Path
from typing import Any

GC_FILE_ENV = "GENVID_BENCH_GC_FILE"


def create_bench_app() -> Any:
    """`genvid_api.main:create_app()` unchanged, plus a probe of the api's garbage collector.

    The duration of every full (generation 2) garbage collection is appended to the file named
    by GENVID_BENCH_GC_FILE: a collection stops the event loop and every request in flight
    waits for it, which is what p99 at concurrency 4 shows.
    """
    from genvid_api.main import create_app  # only in the api process

    gc_file = os.environ.get(GC_FILE_ENV)
    if gc_file:
        log = Path(gc_file).open("a", buffering=1)  # noqa: SIM115  (open for the process's life)
        started: list[float] = []

        def probe(phase: str, info: dict[str, int]) -> None:
            if info.get("generation") != 2:
                return
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                log.write(f"{time.time():.3f} {1000 * (time.perf_counter() - started[0]):.2f}\n")

        gc.callbacks.append(probe)
    return create_app()


def gc_pauses(path: Path, since: float, until: float) -> list[float]:
    """The api's full-collection pauses (ms) between two wall-clock times."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    pauses = []
    for line in lines:
        when, _, ms = line.partition(" ")
        with contextlib.suppress(ValueError):
            if since <= float(when) <= until:
                pauses.append(float(ms))
    return pauses
