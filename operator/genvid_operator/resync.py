"""The periodic resync, the level-triggered safety net under the watch events: every
`resync_seconds` a reconcile pass for each generation that is not settled yet, so a missed event
or a failed pass is made good. kopf does not retry its event handlers; this loop does.

One loop over a set of names, not kopf's timer per object: a timer needs kopf's finalizer on
every VideoGeneration (a PATCH when kopf first sees it and another when it settles and the timer
stops matching, each one more watch event and pass), and kopf keeps a full copy of the body of
every object with a timer in its per-object memory, so the operator's memory grew with all the
resources present rather than with the unsettled ones. Here the watch handler keeps the names of
the unsettled generations (`Unsettled`), a pass that raised puts its generation back, and the
loop drops the ones it finds settled; it runs a few passes at once (`CONCURRENCY`), never one
task per generation.

Unsettled means a pass may still have something to do: not final, or a transition not synced
yet, or a final generation whose Job still has the long TTL its release shortens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from genvid_contracts.resource import VideoGeneration
from genvid_operator.cluster import Json
from genvid_operator.reconcile import settled

log = logging.getLogger(__name__)

# Passes at once in a sweep: enough to overlap their requests, few enough that a sweep over
# thousands of generations (after an outage) does not crowd out the passes of watch events.
CONCURRENCY = 4


def unsettled(vg: VideoGeneration, job: Json | None, released_ttl: int) -> bool:
    """A pass may still act on `vg`: it is not final and synced, or its Job (`job`, if any)
    does not have the TTL of a released Job yet."""
    if not settled(vg):
        return True
    return job is not None and job.get("spec", {}).get("ttlSecondsAfterFinished") != released_ttl


class Unsettled(set[str]):
    """The names of the generations the resync passes over, kept from the watch events."""

    def observe(self, name: str, keep: bool) -> None:
        if keep:
            self.add(name)
        else:
            self.discard(name)


async def sweep(
    names: Iterable[str],
    run: Callable[[str], Awaitable[None]],
    concurrency: int = CONCURRENCY,
) -> None:
    """`run` once for each of `names` (read before the first starts), `concurrency` at a time.
    A run that raises is logged and the others go on: the name stays where it was."""
    pending = iter(sorted(names))

    async def worker() -> None:
        for name in pending:  # shared: each name goes to the first worker free
            try:
                await run(name)
            except Exception:
                log.exception("%s: resync pass failed; retrying at the next resync", name)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def resync_loop(
    names: Unsettled, run: Callable[[str], Awaitable[None]], interval_seconds: float
) -> None:
    """Sweep the unsettled generations every `interval_seconds`, forever. The first sweep waits
    one interval: at start-up the watch's initial events already pass over every generation."""
    while True:
        await asyncio.sleep(interval_seconds)
        await sweep(names, run)
