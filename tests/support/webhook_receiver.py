"""A real HTTP receiver of webhooks on loopback: it records every request and answers with
the status its test chooses (a plain asyncio server, HTTP/1.1, one request per connection)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import standardwebhooks

from support.processes import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> dict[str, object]:
        """The body, once the independent Standard Webhooks implementation accepts its
        signature (raises otherwise)."""
        payload: dict[str, object] = standardwebhooks.Webhook(secret).verify(
            self.body, self.headers
        )
        return payload


@dataclass
class WebhookReceiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # The status to answer each request with (after it is recorded); 0: no answer, the
    # connection held until the client leaves.
    answer: Callable[[Received], int] = lambda _: 204

    def at(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]


async def _read(reader: asyncio.StreamReader) -> Received:
    request_line = (await reader.readline()).decode()
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode()) not in ("\r\n", "\n", ""):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(path=request_line.split(" ")[1], headers=headers, body=body)


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read(reader)
            receiver.received.append(request)
            status = receiver.answer(request)
            if status == 0:
                await reader.read()
                return
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, IndexError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()
