"""Publishes transitions (`genvid_contracts.events`) to NATS JetStream, each once.

The api streams these to clients as Server-Sent Events. A transition is identified by
`<generation>:<eventSeq>`; before publishing, the last message on the generation's subject is
read back, so a transition re-sent after an operator crash is not published twice even
outside JetStream's duplicate window (the `Nats-Msg-Id` header covers the rest). A transition
the caller has just written to the resource itself (`fresh`) skips the read-back, a NATS
request per transition: no earlier process can have published an eventSeq that did not exist
before its status patch, and a second operator publishing it meanwhile does so within the
duplicate window.

NATS may be down when the operator starts or later: it connects in the background and
reconnects forever, so start-up never waits for it and Jobs keep being created; a transition
that cannot be published stays unsynced (`NatsUnavailable`) and the resync publishes it once
NATS is back. The stream is created again if it disappeared (on every reconnection, and when a
publish finds no stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from genvid_contracts import events
from genvid_contracts.events import STREAM_NAME, TransitionEvent, job_subject
from genvid_contracts.resource import VideoGeneration, VideoGenerationStatus


def event_from(vg: VideoGeneration) -> TransitionEvent:
    """The event for the VideoGeneration's current transition (its status.eventSeq)."""
    status: VideoGenerationStatus = vg.get("status") or {}
    output = status.get("output") or {}
    return {
        "id": vg["metadata"]["name"],
        "user_id": vg["spec"]["owner"],
        # The resource's phase is already the events' vocabulary (GenerationStatus).
        "status": status["phase"],
        "seq": int(status.get("eventSeq") or 0),
        "reason": status.get("reason"),
        "message": status.get("message"),
        "attempts": int(status.get("attempts") or 0),
        "updated_at": _transition_time(status),
        "started_at": status.get("startedAt"),
        "finished_at": status.get("finishedAt"),
        "bucket": output.get("bucket"),
        "object_name": output.get("object"),
        "poster_object": output.get("posterObject"),
        "size_bytes": output.get("sizeBytes"),
        "duration_seconds": output.get("durationSeconds"),
        "cost_usd": status.get("estimatedCostUSD"),
        "queue_position": status.get("queuePosition"),
        "deadline_at": vg["spec"].get("deadline"),
    }


def _transition_time(status: VideoGenerationStatus) -> str | None:
    times = [c.get("lastTransitionTime") for c in status.get("conditions") or []]
    return max((t for t in times if t), default=None)


log = logging.getLogger(__name__)


class NatsUnavailable(ConnectionError):
    """Not connected to NATS: the transition stays unsynced until it is."""


class EventPublisher:
    def __init__(self, client: NatsClient, connecting: asyncio.Task[None]) -> None:
        self._client = client
        self._js = client.jetstream()
        self._connecting = connecting

    @classmethod
    def connect(cls, url: str, auth: events.NatsAuth) -> EventPublisher:
        """Start connecting in the background; publishing fails until connected."""
        client = NatsClient()
        return cls(client, asyncio.create_task(_connect(client, url, auth), name="genvid-nats"))

    async def publish_once(self, event: TransitionEvent, *, fresh: bool = False) -> bool:
        """Publish unless the subject already holds this transition; True if published.
        `fresh`: the caller wrote this transition to the resource in this process, just now."""
        if not self._client.is_connected:
            raise NatsUnavailable("NATS is not connected: the transition is published later")
        try:
            return await self._publish_once(event, fresh)
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError):
            # No stream answers for the subject: it was deleted. Make it again, then publish.
            await _ensure_stream(self._js)
            return await self._publish_once(event, fresh)

    async def _publish_once(self, event: TransitionEvent, fresh: bool) -> bool:
        if not fresh:
            name = job_subject(event["user_id"], event["id"])
            try:
                last = await self._js.get_last_msg(STREAM_NAME, name)
                if last.data and json.loads(last.data).get("seq", 0) >= event["seq"]:
                    return False
            except NotFoundError:
                pass
        await events.publish(self._js, event)
        return True

    async def close(self) -> None:
        self._connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._connecting
        if self._client.is_connected:
            await self._client.drain()
        else:
            await self._client.close()


async def _ensure_stream(js: JetStreamContext) -> None:
    if await events.ensure_stream(js):
        log.warning("created the JetStream stream %s (it was missing)", STREAM_NAME)


async def _connect(client: NatsClient, url: str, auth: events.NatsAuth) -> None:
    async def connected() -> None:
        await _ensure_stream(client.jetstream())

    await events.connect(client, url, name="genvid-operator", on_connected=connected, auth=auth)
