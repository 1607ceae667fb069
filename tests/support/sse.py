"""One reader of server-sent events, for the in-process api and for real processes alike, and
a crowd of them held open at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseEvent:
    id: str | None
    data: dict[str, Any]


@dataclass
class SseReader:
    """Reads one SSE response line by line; comments (heartbeats) are counted, not returned."""

    response: httpx.Response
    comments: int = 0
    ended: bool = False
    _lines: AsyncIterator[str] | None = None
    _pending: dict[str, str] = field(default_factory=dict)
    _events: list[SseEvent] = field(default_factory=list)

    async def _read_line(self) -> bool:
        """Consume one line; False at the end of the stream."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        try:
            line = await anext(self._lines)
        except (StopAsyncIteration, httpx.RemoteProtocolError, httpx.ReadError):
            self.ended = True
            return False
        if line.startswith(":"):
            self.comments += 1
        elif line == "":
            if "data" in self._pending:
                data = json.loads(self._pending["data"])
                self._events.append(SseEvent(self._pending.get("id"), data))
            self._pending = {}
        else:
            name, _, value = line.partition(":")
            self._pending[name] = value.removeprefix(" ")
        return True

    async def next_event(self, seconds: float = 10.0) -> SseEvent | None:
        """The next event; None when the stream ends first."""
        async with asyncio.timeout(seconds):
            while not self._events:
                if not await self._read_line():
                    return None
            return self._events.pop(0)

    async def events(self, count: int, seconds: float = 10.0) -> list[SseEvent]:
        found: list[SseEvent] = []
        while len(found) < count:
            event = await self.next_event(seconds)
            if event is None:
                break
            found.append(event)
        return found

    async def wait_comments(self, count: int, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while self.comments < count:
                if not await self._read_line():
                    raise AssertionError("stream ended while waiting for heartbeats")

    async def wait_end(self, seconds: float = 10.0) -> None:
        """Read until the server ends the stream (events seen meanwhile are kept)."""
        async with asyncio.timeout(seconds):
            while await self._read_line():
                pass


@contextlib.asynccontextmanager
async def sse(
    http: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> AsyncIterator[SseReader]:
    async with http.stream(
        "GET", url, headers={**headers, "Accept": "text/event-stream"}, timeout=30
    ) as response:
        yield SseReader(response)


def crowd_client(url: str) -> httpx.AsyncClient:
    """An HTTP client of an api process for a crowd: one connection per stream, no cap."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=url, timeout=60, trust_env=False, limits=limits)


StreamRequest = tuple[httpx.AsyncClient, str, dict[str, str]]


@contextlib.asynccontextmanager
async def crowd(
    requests: Sequence[StreamRequest], seconds: float = 120, connecting: int = 10
) -> AsyncIterator[list[SseReader]]:
    """Every stream of `requests` open at once, each answered 200 and past its first heartbeat
    (so the server holds it), in the order given; all closed on exit. At most `connecting` are
    being opened at a time, as clients arrive in life (not all within one database pool's
    wait)."""
    readers: list[SseReader | None] = [None] * len(requests)
    release = asyncio.Event()
    gate = asyncio.Semaphore(connecting)

    async def hold(index: int, request: StreamRequest) -> None:
        http, url, headers = request
        async with contextlib.AsyncExitStack() as stack:
            async with gate:  # until the answer's headers: the database work is done by then
                reader = await stack.enter_async_context(sse(http, url, headers))
                # A loaded server may ask to come back (503, Retry-After), as EventSource would.
                while reader.response.status_code == 503:
                    await stack.aclose()
                    await asyncio.sleep(1)
                    reader = await stack.enter_async_context(sse(http, url, headers))
            assert reader.response.status_code == 200, await reader.response.aread()
            await reader.wait_comments(1, seconds)
            readers[index] = reader
            await release.wait()

    holders = [asyncio.create_task(hold(i, request)) for i, request in enumerate(requests)]
    try:
        async with asyncio.timeout(seconds):
            while not all(readers):
                done = [task for task in holders if task.done()]
                for task in done:
                    task.result()  # a stream refused or ended early fails the caller here
                await asyncio.sleep(0.05)
        yield [reader for reader in readers if reader is not None]
    finally:
        release.set()
        await asyncio.gather(*holders, return_exceptions=True)
