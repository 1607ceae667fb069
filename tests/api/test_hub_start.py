"""The SSE hub's first subscription: a transition the new consumer delivers before its
creation has answered is not lost (a stream that joins once the hub is ready replays it).

The hub runs in the test's own process over the real NATS server, so the test can hold the
consumer's creation open until that early delivery has reached the hub.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from genvid_api.fanout import Event, Hub, open_feed
from genvid_contracts.events import job_subject
from support.job_stream import publish_transition
from support.polling import eventually

pytestmark = pytest.mark.stack


@pytest.fixture
async def nc(stack_env: dict[str, str]) -> AsyncIterator[Client]:
    client = await nats.connect(stack_env["NATS_URL"], connect_timeout=5)
    yield client
    await client.close()


async def _plain(user_id: uuid.UUID, event: Event) -> bytes:
    return str(event.seq).encode()


async def test_a_transition_delivered_while_the_consumer_is_created_reaches_a_new_stream(
    nc: Client, js: JetStreamContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, job = uuid.uuid4(), uuid.uuid4()
    hub = Hub(nc, queue_limit=16, heartbeat=60)
    published: list[int] = []
    create = hub.js.add_consumer

    async def create_after_a_publish(*args: Any, **kwargs: Any) -> Any:
        # Published after the hub read the stream's last sequence: the new consumer's first.
        published.append(await publish_transition(js, str(user), str(job), "QUEUED", 1))
        info = await create(*args, **kwargs)
        await eventually(
            lambda: hub._expected > 1, what="the consumer's first delivery", interval=0.01
        )
        return info

    monkeypatch.setattr(hub.js, "add_consumer", create_after_a_publish)
    hub.start()
    try:
        await hub.ready()
        feed = await open_feed(
            hub,
            user,
            job,
            job_subject(str(user), str(job)),
            after=0,
            encode=_plain,
            expires_in=60,
        )
        async with asyncio.timeout(10):
            event = await feed.next()
        assert event is not None
        assert (event.seq, event.body["status"]) == (published[0], "QUEUED")
        feed.close()
    finally:
        await hub.close()
