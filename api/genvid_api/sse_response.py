"""The event streams' HTTP response: sse-starlette's, run with one task beside the request's.

`EventSourceResponse` runs each response in an anyio task group of four tasks (the body, a
ping, a shutdown watcher, a disconnect watcher), each with its cancel scopes, and every send
under a cancel scope and a lock. At 10,000 open streams those objects are most of what the
garbage collector walks, and its full collections stop the event loop for seconds. Here the
request's own task sends the body; one more task per stream waits for the client to leave;
heartbeats are written by the streams themselves (they wait for their next event at most that
long), and the server's shutdown is watched once per process by the hub (`fanout.Hub`), which
ends every stream's feed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Mapping

from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send


async def server_exit() -> None:
    """Return once the server begins to shut down (sse-starlette's one watcher per loop)."""
    await EventSourceResponse._listen_for_exit_signal()


class EventStreamResponse(EventSourceResponse):
    """An SSE response whose body is already encoded frames (and heartbeats)."""

    def __init__(
        self,
        frames: AsyncGenerator[bytes, None],
        on_disconnect: Callable[[], None],
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(frames, headers=headers, ping=0)
        self._frames = frames
        self._on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        watcher = asyncio.create_task(self._watch(receive))
        try:
            async for frame in self._frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            await self._frames.aclose()  # the stream's own clean-up, now

    async def _watch(self, receive: Receive) -> None:
        """Wake the stream when the client leaves (uvicorn's sends to it do nothing then)."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self._on_disconnect()
