"""One way to wait for a condition, for every test: poll, then fail saying what was awaited."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    what: str = ...,
    seconds: float = ...,
    interval: float = ...,
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T | None],
    *,
    what: str = ...,
    seconds: float = ...,
    interval: float = ...,
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    *,
    what: str = "condition",
    seconds: float = 15.0,
    interval: float = 0.1,
) -> Any:
    """Poll `probe` (plain or async) until it returns something other than None or False.

    Only None and False mean "not yet", so a probe may return 0 or an empty list as its answer.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
