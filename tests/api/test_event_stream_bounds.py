"""Server-sent event streams are bounded: a per-user cap on open streams shared by two api
processes (429 past it), a bound on how far back Last-Event-ID replays (422), and streams that
end when their access token expires, their user is deactivated or their sessions are ended."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import jwt
import pytest
from nats.js import JetStreamContext

from support.api import JWT_SECRET, Account, ApiClient, access_claims, api_http_client
from support.api_process import ApiProcess
from support.job_stream import publish_transition
from support.sse import sse

pytestmark = pytest.mark.stack

CAP, MAX_REPLAY = 2, 5


@pytest.fixture(scope="module")
def servers(start_api: Callable[..., ApiProcess]) -> tuple[ApiProcess, ApiProcess]:
    bounds = {
        "GENVID_SSE_STREAMS_PER_USER": str(CAP),
        "GENVID_SSE_MAX_REPLAY_EVENTS": str(MAX_REPLAY),
        "GENVID_SSE_RECHECK_SECONDS": "1",
        "GENVID_OUTBOX_ENABLED": "false",
    }
    return start_api("bounds-a", **bounds), start_api("bounds-b", **bounds)


@pytest.fixture
async def clients(servers: tuple[ApiProcess, ApiProcess]) -> AsyncIterator[list[ApiClient]]:
    a, b = servers
    async with api_http_client(a.url) as http_a, api_http_client(b.url) as http_b:
        yield [ApiClient(http_a), ApiClient(http_b)]


async def _refusal(client: ApiClient, path: str, headers: dict[str, str]) -> httpx.Response:
    """A request that must be refused; a stream (200) instead fails it within seconds."""
    async with asyncio.timeout(10):
        return await client.http.get(path, headers=headers)


async def test_a_user_holds_at_most_the_cap_of_streams_across_processes(
    clients: list[ApiClient],
) -> None:
    a, b = clients
    account, other = await a.register(), await a.register()
    async with sse(a.http, "/events", account.auth) as first:
        await first.wait_comments(1)
        async with sse(b.http, "/events", account.auth) as second:
            await second.wait_comments(1)
            for client in clients:
                refused = await _refusal(client, "/events", account.auth)
                assert refused.status_code == 429, refused.text
                assert int(refused.headers["retry-after"]) >= 1
                assert refused.json() == {"detail": f"At most {CAP} open event streams per user"}
            # Someone else's streams are theirs.
            async with sse(b.http, "/events", other.auth) as theirs:
                await theirs.wait_comments(1)
        # A stream that ends gives its slot back at once.
        async with sse(b.http, "/events", account.auth) as third:
            assert third.response.status_code == 200
            await third.wait_comments(1)


async def test_last_event_id_may_not_resume_too_far_back(
    clients: list[ApiClient], js: JetStreamContext
) -> None:
    a, _ = clients
    account = await a.register()
    response = await a.generate(account)
    job_id = response.json()["id"]
    seqs = [
        await publish_transition(js, account.user_id, job_id, "RUNNING", n, attempts=n)
        for n in range(1, MAX_REPLAY + 3)
    ]
    too_far = {**account.auth, "Last-Event-ID": str(seqs[0])}
    for path in ("/events", f"/generations/{job_id}/events"):
        refused = await _refusal(a, path, too_far)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["type"] == "replay_too_far"
    # From the very beginning is as far back as it gets.
    everything = {**account.auth, "Last-Event-ID": "0"}
    assert (await _refusal(a, "/events", everything)).status_code == 422
    near = {**account.auth, "Last-Event-ID": str(seqs[-3])}
    async with sse(a.http, "/events", near) as stream:
        events = await stream.events(2)
    assert [event.id for event in events] == [str(seq) for seq in seqs[-2:]]


async def test_a_stream_ends_when_its_access_token_expires(clients: list[ApiClient]) -> None:
    a, _ = clients
    account = await a.register()
    short = jwt.encode(access_claims(account.user_id, lifetime=3), JWT_SECRET, algorithm="HS256")
    async with sse(a.http, "/events", {"Authorization": f"Bearer {short}"}) as stream:
        await stream.wait_comments(1)
        started = asyncio.get_running_loop().time()
        await stream.wait_end(seconds=10)
    assert asyncio.get_running_loop().time() - started < 5
    # EventSource reconnects with the old token: 401, it needs a fresh one.
    again = await _refusal(a, "/events", {"Authorization": f"Bearer {short}"})
    assert again.status_code == 401


async def _ended_by(change: Callable[[Account], Awaitable[None]], client: ApiClient) -> None:
    """Both kinds of stream of a new user end within seconds of `change`."""
    account = await client.register()
    response = await client.generate(account)
    job_id = response.json()["id"]
    async with (
        sse(client.http, "/events", account.auth) as mine,
        sse(client.http, f"/generations/{job_id}/events", account.auth) as one,
    ):
        await mine.wait_comments(1)
        await one.wait_comments(1)
        await change(account)
        await mine.wait_end(seconds=10)
        await one.wait_end(seconds=10)


async def test_streams_end_when_the_user_is_deactivated(
    clients: list[ApiClient], db: asyncpg.Pool
) -> None:
    async def deactivate(account: Account) -> None:
        await db.execute(
            "UPDATE users SET is_active = false WHERE id = $1", uuid.UUID(account.user_id)
        )

    await _ended_by(deactivate, clients[0])


async def test_streams_end_when_every_session_is_ended(clients: list[ApiClient]) -> None:
    async def logout_all(account: Account) -> None:
        response = await clients[1].http.post("/auth/logout-all", headers=account.auth)
        assert response.status_code == 204

    await _ended_by(logout_all, clients[0])


async def test_a_stream_of_a_valid_session_stays_open(clients: list[ApiClient]) -> None:
    """The control: renewals of a valid session keep the stream going."""
    a, _ = clients
    account = await a.register()
    async with sse(a.http, "/events", account.auth) as stream:
        await stream.wait_comments(1)
        await asyncio.sleep(3.5)  # past three renewals
        await stream.wait_comments(stream.comments + 1)
        assert not stream.ended
