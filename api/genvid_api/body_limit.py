"""A request body limit on every route, authenticated or not, enforced before the body is read.

No route of the api takes more than a few kilobytes (the largest is a prompt of 2,000
characters), yet FastAPI reads a whole body into memory before validation or authentication
looks at it: without a bound, any client could make a process buffer gigabytes. This ASGI
middleware answers 413 as soon as the body is known to be too large: at once from a
`Content-Length` over the limit, or, for a chunked body, as soon as the bytes received pass it;
the application then sees a disconnected client and whatever it answers is dropped.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we run
    return None


class BodyLimit:
    """413 `{"detail": ...}` for a body over `max_bytes`, read no further than the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            {"detail": f"The request body is larger than {self.max_bytes} bytes"},
            status_code=413,
            headers={"Connection": "close"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return

        received = 0
        refused = False
        started = False

        async def receive_limited() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await self._too_large()(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the application's answer to a body it never got whole
            started = True
            await send(message)

        await self.app(scope, receive_limited, send_unless_refused)
