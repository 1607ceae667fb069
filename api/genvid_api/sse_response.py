"""The event streams' HTTP response: sse-starlette's headers and format, run lean.

`EventSourceResponse` runs each response in an anyio task group of four tasks (the body, a
ping, a shutdown watcher, a disconnect watcher), each with its cancel scopes, and every send
under a cancel scope and a lock. At 10,000 open streams what each stream keeps is what the
garbage collector walks in its full collections, which stop the event loop for every stream.
Here the request's own task runs the stream (`FrameSource.run`), writing each frame straight to
the server (no generator between them); one more task per stream waits for the client to
leave; heartbeats and the server's shutdown come from the process's hub (`fanout.Hub`), which
wakes or ends every stream's feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from sse_starlette import EventSourceResponse
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Write = Callable[[bytes], Awaitable[None]]


async def server_exit() -> None:
    """Return once the server begins to shut down (sse-starlette's one watcher per loop)."""
    await EventSourceResponse._listen_for_exit_signal()


class FrameSource(Protocol):
    """An event stream's own logic, run by its response."""

    async def run(self, write: Write) -> None:
        """Write encoded frames (and heartbeats) until the stream is over."""

    def disconnected(self) -> None:
        """The client left: `run` must return soon."""

    async def close(self) -> None:
        """After `run`, however it ended."""


class EventStreamResponse(Response):
    """An SSE response (sse-starlette's headers) whose body a `FrameSource` writes."""

    media_type = "text/event-stream"

    def __init__(self, source: FrameSource, headers: Mapping[str, str]) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({**headers, "Connection": "keep-alive", "X-Accel-Buffering": "no"})
        self._source = source
        self._send: Send | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            self._send = send
            watcher = asyncio.create_task(self._watch(receive))
            try:
                await self._source.run(self.write)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                watcher.cancel()
        finally:
            self._send = None
            await self._source.close()  # also when the client was gone before the start

    async def write(self, frame: bytes) -> None:
        assert self._send is not None, "write while the response runs"
        await self._send({"type": "http.response.body", "body": frame, "more_body": True})

    async def _watch(self, receive: Receive) -> None:
        """Wake the stream when the client leaves (uvicorn's sends to it do nothing then)."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self._source.disconnected()
