"""Bodies over GENVID_MAX_BODY_BYTES get 413 on every route, signed in or not, before the api
has read them whole (a real uvicorn process: the limit is about what crosses the socket)."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from support.api import ApiClient, api_http_client
from support.api_process import ApiProcess

pytestmark = pytest.mark.stack

LIMIT = 4096


@pytest.fixture(scope="module")
def server(start_api: Callable[..., ApiProcess]) -> ApiProcess:
    return start_api("body-limit", GENVID_MAX_BODY_BYTES=str(LIMIT), GENVID_OUTBOX_ENABLED="false")


async def test_a_declared_length_over_the_limit_is_413_on_every_route(
    server: ApiProcess, db: asyncpg.Pool
) -> None:
    async with api_http_client(server.url) as http:
        client = ApiClient(http)
        account = await client.register()
        big = "a" * (LIMIT + 1)
        for method, path, headers in (
            ("POST", "/auth/register", {}),
            ("POST", "/auth/token", {}),
            ("POST", "/generate", {}),
            ("POST", "/generate", account.auth),
            ("POST", "/videos", account.auth),
            ("GET", "/feed", account.auth),
            ("POST", "/no/such/route", {}),
        ):
            response = await http.request(
                method, path, content=json.dumps({"prompt": big}), headers=headers
            )
            assert response.status_code == 413, (method, path, response.text)
            assert response.json() == {"detail": f"The request body is larger than {LIMIT} bytes"}
        count = await db.fetchval(
            "SELECT count(*) FROM video_generation_jobs WHERE user_id = $1::uuid",
            account.user_id,
        )
        assert count == 0
        # Just under the limit is an ordinary request.
        small = await client.generate(account, prompt="p" * 1000)
        assert small.status_code == 202, small.text


async def test_a_chunked_body_is_refused_before_it_ends(server: ApiProcess) -> None:
    """No Content-Length: the answer comes once the limit is passed, while the client is
    still sending (the last chunk is never sent)."""
    url = urllib.parse.urlsplit(server.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(
            b"POST /auth/register HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 1024
        for _ in range(LIMIT // len(chunk) + 2):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
        async with asyncio.timeout(10):
            status_line = await reader.readline()
        assert status_line.startswith(b"HTTP/1.1 413"), status_line
    finally:
        writer.close()


async def test_a_small_body_still_registers(server: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
        body = {"email": "small-body@example.com", "username": "smallbody", "password": "x" * 3}
        response = await http.post("/auth/register", json=body)
        assert response.status_code == 422  # validated, so it was read: the password is short
