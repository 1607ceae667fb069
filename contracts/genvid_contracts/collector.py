"""The garbage collector's set-up shared by the long-running processes (api, operator).

Both allocate short-lived containers at a high rate (requests, watch events, bodies) and keep a
large, long-lived heap (open event streams; kopf's memory of every object). With Python's
thresholds a young collection runs every 700 allocations and promotes what is alive then, and
the full collections that follow walk that whole heap: 100-160 ms pauses in the api at 10,000
streams, a third of the operator's CPU while it dispatched a backlog (`bench.sse`,
`bench.dispatch`).
"""

from __future__ import annotations

import gc


def tune(young_threshold: int) -> None:
    """Freeze what is loaded by now (modules, clients, settings: it lives as long as the
    process) out of every later collection, and run a young collection every
    `young_threshold` allocations (0 keeps Python's), so that short-lived objects die before
    one runs and full collections come that much less often."""
    gc.collect()
    gc.freeze()
    if young_threshold:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)
