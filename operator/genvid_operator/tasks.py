"""The operator's background loops (admission, retention, resync) are plain asyncio tasks that
its cleanup handlers stop. Stopping one is the same everywhere: cancel it, then await it so it
has finished (closed what it held) before the connections it uses are closed after it."""

from __future__ import annotations

import asyncio
import contextlib


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` and wait until it has ended; None (never started) is a no-op."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
