"""Generation transitions on NATS JetStream: the stream's configuration, publishing, and
reading single messages.

The operator publishes every transition of a generation as `genvid_contracts.events` defines it
(subject `genvid.jobs.<user_id>.<generation_id>`, message id `<generation_id>:<event_seq>`, a
`TransitionEvent` body). The api publishes the same way for the few transitions it makes itself
(a generation rejected before its resource could exist).

SSE connections read through the process's one hub (fanout.py), never a consumer of their
own: the server's consumers do not grow with the clients.

NATS may be down when the api starts, or go away later: the api connects in the background
(`connect` never blocks start-up), reconnects forever, and meanwhile only what needs NATS fails
fast (`require_connected`: the event streams answer 503). On every (re)connection, and when a
publish finds no stream, the stream is created again if it disappeared (`ensure_stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from genvid_api.models import Generation
from genvid_contracts import events
from genvid_contracts.events import STREAM_NAME, TransitionEvent

log = logging.getLogger(__name__)


class NatsUnavailable(ConnectionError):
    """Not connected to NATS (yet, or any more): what needs it answers 503."""


def require_connected(js: JetStreamContext) -> None:
    if not js._nc.is_connected:  # the context's client; nats-py exposes it no other way
        raise NatsUnavailable("NATS is not connected")


async def connect(nc: NATS, url: str, *, ensure: bool, auth: events.NatsAuth) -> None:
    """Connect `nc` (run it as a task: it waits for NATS); with `ensure`, the stream exists
    after every (re)connection."""

    async def connected() -> None:
        if ensure:
            await ensure_stream(nc.jetstream())

    await events.connect(nc, url, name="genvid-api", on_connected=connected, auth=auth)


async def close(nc: NATS, connecting: asyncio.Task[None]) -> None:
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await connecting
    if nc.is_connected:
        await nc.drain()
    else:
        await nc.close()


async def ensure_stream(js: JetStreamContext) -> None:
    try:
        if await events.ensure_stream(js):
            log.info("created JetStream stream %s", STREAM_NAME)
    except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
        log.warning("could not ensure stream %s: %r", STREAM_NAME, exc)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def transition_event(generation: Generation) -> TransitionEvent:
    """A generation's current state in the operator's message format."""
    return {
        "id": str(generation.id),
        "user_id": str(generation.user_id),
        "status": generation.status,
        "seq": generation.event_seq,
        "reason": generation.reason,
        "message": generation.message,
        "attempts": generation.attempts,
        "updated_at": _iso(generation.updated_at),
        "started_at": _iso(generation.started_at),
        "finished_at": _iso(generation.finished_at),
        "bucket": generation.bucket,
        "object_name": generation.object_name,
        "poster_object": generation.poster_object,
        "size_bytes": generation.size_bytes,
        "duration_seconds": generation.video_duration_seconds,
        "cost_usd": None if generation.cost_usd is None else str(generation.cost_usd),
        "deadline_at": _iso(generation.deadline_at),
    }


def transition_body(generation: Generation) -> dict[str, Any]:
    """The same, as parsed from a NATS message."""
    return dict(transition_event(generation))


async def publish_transition(js: JetStreamContext, generation: Generation) -> None:
    """Publish a transition the api made itself; failures are logged (the database is truth)."""
    try:
        try:
            await events.publish(js, transition_event(generation))
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError):
            await ensure_stream(js)  # the stream is gone: make it again, then publish
            await events.publish(js, transition_event(generation))
    except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
        log.warning("could not publish transition of generation %s: %r", generation.id, exc)


@dataclass(frozen=True)
class StreamEvent:
    """One message of the stream: its stream sequence (the SSE id) and its decoded body."""

    seq: int
    body: dict[str, Any]


async def last_sequence(js: JetStreamContext) -> int:
    """The stream's newest sequence: "from now on" as a position, fixed before subscribing."""
    require_connected(js)
    info = await js.stream_info(STREAM_NAME)
    return int(info.state.last_seq)


def decode(data: bytes | None) -> dict[str, Any] | None:
    try:
        body = json.loads(data or b"")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def last_event(js: JetStreamContext, subject: str) -> StreamEvent | None:
    """The newest message on a subject, or None if the stream holds none."""
    require_connected(js)
    try:
        raw = await js.get_last_msg(STREAM_NAME, subject)
    except nats.js.errors.NotFoundError:
        return None
    body = decode(raw.data)
    if raw.seq is None or body is None:
        return None
    return StreamEvent(seq=raw.seq, body=body)
