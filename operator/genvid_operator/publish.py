"""Publishes transitions (`genvid_contracts.events`) to NATS JetStream, each once.

The api streams these to clients as Server-Sent Events. A transition is identified by
`<generation>:<eventSeq>`; before publishing, the last message on the generation's subject is
read back, so a transition re-sent after an operator crash is not published twice even
outside JetStream's duplicate window (the `Nats-Msg-Id` header covers the rest).
"""

from __future__ import annotations

import json

import nats
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
    }


def _transition_time(status: VideoGenerationStatus) -> str | None:
    times = [c.get("lastTransitionTime") for c in status.get("conditions") or []]
    return max((t for t in times if t), default=None)


class EventPublisher:
    def __init__(self, client: NatsClient, js: JetStreamContext) -> None:
        self._client = client
        self._js = js

    @classmethod
    async def connect(cls, url: str) -> EventPublisher:
        client = await nats.connect(url, name="genvid-operator", max_reconnect_attempts=-1)
        js = client.jetstream()
        await events.ensure_stream(js)
        return cls(client, js)

    async def publish_once(self, event: TransitionEvent) -> bool:
        """Publish unless the subject already holds this transition; True if published."""
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
        await self._client.drain()
