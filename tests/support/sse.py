"""One reader of server-sent events, for the in-process api and for real processes alike."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
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
