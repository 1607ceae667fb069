"""Stopping background tasks, the same in every long-running process (the api's outbox, hub and
webhook loops; the operator's admission, retention and resync loops): cancel them, then await
them, so each has finished (closed what it held) before what it uses is closed after it."""

from __future__ import annotations

import asyncio
import contextlib


async def stop(*tasks: asyncio.Task[None] | None) -> None:
    """Cancel every one of `tasks`, then wait until each has ended; None (never started) is
    skipped."""
    started = [task for task in tasks if task is not None]
    for task in started:
        task.cancel()
    for task in started:
        with contextlib.suppress(asyncio.CancelledError):
            await task
