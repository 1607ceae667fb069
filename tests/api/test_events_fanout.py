"""Server-sent events for many clients at once: 300 streams of 30 users over two api processes.

Every client receives each event of its own generations exactly once and nothing of anyone
else's, a client that leaves mid-stream and comes back with Last-Event-ID (to the other
process) misses nothing, and the NATS server's consumers do not grow with the clients. The
operator is simulated by publishing its messages to the stream.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import nats
import pytest
from nats.js import JetStreamContext

from genvid_api.nats_stream import ensure_stream
from genvid_contracts.events import STREAM_NAME
from genvid_devstack.nats import start_nats
from support.api import Account, ApiClient
from support.api_process import ApiProcess
from support.job_stream import publish_transition, stream_consumers
from support.jobs import insert_job
from support.sse import SseEvent, crowd, crowd_client

pytestmark = pytest.mark.stack

USERS, GENERATIONS = 30, 2
# Per user: the /events streams that stay, one that leaves and comes back, and two streams of
# each generation: 5 + 1 + 2 * 2 = 10 streams a user, 300 in all.
STAYING = 5


@pytest.fixture
async def http(
    start_api: Callable[..., ApiProcess],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Crowd clients of two api processes of this module's own."""
    # Heartbeats every 2 s: a quiet per-generation stream looks at its row every 4 s.
    a, b = (
        start_api(f"fanout-{name}", GENVID_OUTBOX_ENABLED="false", GENVID_SSE_HEARTBEAT_SECONDS="2")
        for name in "ab"
    )
    async with crowd_client(a.url) as http_a, crowd_client(b.url) as http_b:
        yield http_a, http_b


@dataclass
class User:
    account: Account
    generations: list[str]
    # The stream sequences of the user's events, as published, per generation.
    published: dict[str, list[int]] = field(default_factory=dict)

    def all_published(self) -> list[int]:
        return sorted(seq for seqs in self.published.values() for seq in seqs)


async def _users(client: ApiClient, db: asyncpg.Pool) -> list[User]:
    accounts = [await client.register("fan") for _ in range(USERS)]
    return [
        User(
            account,
            [
                await insert_job(db, account.user_id, resource_created=True)
                for _ in range(GENERATIONS)
            ],
        )
        for account in accounts
    ]


async def _publish(js: JetStreamContext, users: list[User], steps: list[tuple[int, str]]) -> None:
    """The next transitions of every generation, interleaved across users."""
    for seq, status in steps:
        for user in users:
            for generation in user.generations:
                extra = {}
                if status == "SUCCEEDED":
                    extra = {
                        "bucket": "genvid-previews",
                        "object_name": f"previews/{generation}/p.mp4",
                        "poster_object": f"previews/{generation}/p.jpg",
                    }
                stream_seq = await publish_transition(
                    js, user.account.user_id, generation, status, seq, **extra
                )
                user.published.setdefault(generation, []).append(stream_seq)


def _ids(events: list[SseEvent]) -> list[int]:
    return [int(event.id or "") for event in events]


async def test_300_clients_get_their_own_events_exactly_once_and_resume_without_loss(
    http: tuple[httpx.AsyncClient, httpx.AsyncClient], js: JetStreamContext, db: asyncpg.Pool
) -> None:
    a, b = http
    users = await _users(ApiClient(a), db)
    # An event reaching a stream of each process: both hubs are subscribed.
    early = await ApiClient(a).register("early")
    async with crowd([(http, "/events", early.auth) for http in (a, b)]) as first:
        await publish_transition(js, early.user_id, str(uuid.uuid4()), "QUEUED", 1)
        for reader in first:
            assert len(await reader.events(1, 30)) == 1
        hubs = await stream_consumers(js)
    staying = [
        (user, (a, b)[i % 2], "/events", None)
        for user in users
        for i in range(STAYING)
    ] + [
        (user, (a, b)[i % 2], f"/generations/{generation}/events", generation)
        for user in users
        for generation in user.generations
        for i in range(2)
    ]  # fmt: skip
    leaving = [(user, a, "/events", None) for user in users]
    first, rest = [(1, "QUEUED"), (2, "RUNNING")], [(3, "RUNNING"), (4, "SUCCEEDED")]
    per_user_first = len(first) * GENERATIONS
    async with crowd([(http, url, user.account.auth) for user, http, url, _ in staying]) as stay:
        async with crowd(
            [(http, url, user.account.auth) for user, http, url, _ in leaving]
        ) as gone:
            # 330 streams open: the server's consumers are still only the processes' hubs.
            assert await stream_consumers(js) <= hubs
            await _publish(js, users, first)
            left_with = await asyncio.gather(*(r.events(per_user_first, 60) for r in gone))
        # The leavers are away while the rest is published; they come back to the other process.
        await _publish(js, users, rest)
        returning = [
            (b, "/events", {**user.account.auth, "Last-Event-ID": events[-1].id or ""})
            for user, events in zip(users, left_with, strict=True)
        ]
        async with crowd(returning) as back:
            came_back_with = await asyncio.gather(
                *(r.events(len(rest) * GENERATIONS, 60) for r in back)
            )
            assert await stream_consumers(js) <= hubs
        expected_counts = [
            len(user.all_published()) if generation is None else len(first) + len(rest)
            for user, _, _, generation in staying
        ]
        received = await asyncio.gather(
            *(r.events(n, 60) for r, n in zip(stay, expected_counts, strict=True))
        )
        # Per-generation streams end after the terminal event; /events streams stay quiet.
        await asyncio.gather(
            *(
                r.wait_end(30) if gen else r.wait_comments(r.comments + 2, 30)
                for r, (*_, gen) in zip(stay, staying, strict=True)
            )
        )
        assert all(reader._events == [] for reader in stay)

    for (user, _, _, generation), events in zip(staying, received, strict=True):
        wanted = user.all_published() if generation is None else user.published[generation]
        assert _ids(events) == wanted
        assert all(event.data["id"] in user.generations for event in events)
        if generation is not None:
            assert [e.data["status"] for e in events] == [
                "QUEUED",
                "RUNNING",
                "RUNNING",
                "SUCCEEDED",
            ]
            assert "X-Goog-Signature=" in events[-1].data["video_url"]
    for user, before, after in zip(users, left_with, came_back_with, strict=True):
        assert _ids(before) + _ids(after) == user.all_published()

    assert await stream_consumers(js) <= hubs


async def test_open_streams_receive_what_was_published_while_nats_restarted(
    start_api: Callable[..., ApiProcess], tmp_path: Path
) -> None:
    """The hub subscribes again from where it was: an open stream stays open and receives,
    late, every event published once NATS is back, none twice."""
    (tmp_path / "logs").mkdir()
    server = start_nats(tmp_path, tmp_path / "logs")
    api = start_api("fanout-nats", GENVID_NATS_URL=server.url, GENVID_OUTBOX_ENABLED="false")
    generation = str(uuid.uuid4())
    try:
        async with crowd_client(api.url) as http:
            account = await ApiClient(http).register("restart")

            async def publish(seq: int) -> int:
                client = await nats.connect(server.url)
                try:
                    await ensure_stream(client.jetstream())
                    status = "QUEUED" if seq == 1 else "RUNNING"
                    return await publish_transition(
                        client.jetstream(), account.user_id, generation, status, seq
                    )
                finally:
                    await client.close()

            async with crowd([(http, "/events", account.auth)]) as [stream]:
                published = [await publish(1)]
                assert _ids(await stream.events(1, 30)) == published
                server.process.stop()
                server = await asyncio.to_thread(start_nats, tmp_path, tmp_path / "logs")
                published += [await publish(seq) for seq in (2, 3, 4)]
                received = await stream.events(3, 60)
                assert _ids(received) == published[1:]
                assert not stream.ended
    finally:
        server.process.stop()


async def test_a_stream_opened_just_after_the_stream_was_recreated_misses_nothing(
    start_api: Callable[..., ApiProcess], tmp_path: Path
) -> None:
    """The hub learns of a deleted and recreated JetStream stream from its advisories at once,
    not from its consumer's silence seconds later: a client that connects meanwhile is not
    served from the old stream's position (and then ended), it receives the new stream's
    events."""
    (tmp_path / "logs").mkdir()
    server = start_nats(tmp_path, tmp_path / "logs")
    api = start_api("fanout-recreate", GENVID_NATS_URL=server.url, GENVID_OUTBOX_ENABLED="false")
    client = await nats.connect(server.url)
    js = client.jetstream()
    try:
        async with crowd_client(api.url) as http:
            account = await ApiClient(http).register("recreate")
            before, after = str(uuid.uuid4()), str(uuid.uuid4())
            await ensure_stream(js)
            async with crowd([(http, "/events", account.auth)]) as [old]:
                seqs = [
                    await publish_transition(js, account.user_id, before, "RUNNING", seq)
                    for seq in (1, 2, 3)
                ]
                assert _ids(await old.events(3, 30)) == seqs  # the hub is at sequence 3
            await js.delete_stream(STREAM_NAME)
            await ensure_stream(js)
            first = await publish_transition(js, account.user_id, after, "QUEUED", 1)
            headers = {**account.auth, "Last-Event-ID": "0"}
            async with crowd([(http, "/events", headers)]) as [new]:
                second = await publish_transition(js, account.user_id, after, "RUNNING", 2)
                assert _ids(await new.events(2, 30)) == [first, second] == [1, 2]
                assert not new.ended
    finally:
        await client.close()
        server.process.stop()
