"""Server-sent events: a generation's transitions, or all of the caller's, from NATS JetStream.

Every connection reads through the process's hub (fanout.py): one consumer of the stream per
api process, whatever the number of clients. The SSE `id:` of an event is its JetStream stream
sequence, the same on every process: a client that reconnects with `Last-Event-ID: N` (or
`?last_event_id=N`) to any of them resumes at N+1, missing nothing and repeating nothing.

`id: 0` is reserved for a snapshot built from the database, sent by a per-generation stream
only when the generation is finished but the stream holds no terminal event for it (expired
after seven days, or its publication failed). A per-generation request for a finished
generation whose terminal event the client already has (`Last-Event-ID` at or past it, or 0)
is answered 204 No Content, which tells EventSource not to reconnect.

Streams are bounded: a user holds at most `GENVID_SSE_STREAMS_PER_USER` open streams across all
processes (slots in `sse_streams`; 429 past it); `Last-Event-ID` may resume at most
`GENVID_SSE_MAX_REPLAY_EVENTS` stream sequences back (422 beyond: fetch the state and reconnect
without it); and a stream ends when its access token expires (the client reconnects with a fresh
one) or, within `GENVID_SSE_RECHECK_SECONDS`, when its user is deactivated or the session ended
(logout-all, a password change).
"""

from __future__ import annotations

import functools
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from genvid_api import fanout, nats_stream
from genvid_api.context import AppContext
from genvid_api.deps import AccessClaims, Ctx, CurrentUser
from genvid_api.errors import (
    AUTH_RESPONSES,
    Invalid,
    NotFound,
    Responses,
    TooManyRequests,
    responses,
)
from genvid_api.metrics import SSE_EVENTS
from genvid_api.models import Generation, User
from genvid_api.queries import generations
from genvid_api.security import TokenClaims
from genvid_api.sse_response import EventStreamResponse, FrameSource, Write
from genvid_api.stream_slots import Slot
from genvid_api.views import event_payload
from genvid_contracts.events import job_subject, user_subjects
from genvid_contracts.status import TERMINAL_STATUSES

router = APIRouter(tags=["events"], responses=AUTH_RESPONSES)

SNAPSHOT_ID = 0

LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="Resume after this event id (a stream sequence); sent by EventSource.",
    ),
]
LastEventIdQuery = Annotated[
    str | None,
    Query(
        alias="last_event_id",
        description="Same as the Last-Event-ID header, for clients that cannot set headers.",
    ),
]

_SSE_RESPONSES: Responses = {
    200: {
        "description": "An event stream. Each event: `id:` the stream sequence, `data:` JSON "
        "with id, status, seq, reason, message, attempts, updated_at, cost_usd (and "
        "video_url, poster_url, urls_expire_at once SUCCEEDED). Comment lines are heartbeats.",
        "content": {"text/event-stream": {}},
    },
    **responses(
        (Invalid, "Last-Event-ID is not a non-negative integer, or too far back to replay"),
        (TooManyRequests, "The user has as many open streams as allowed"),
    ),
}


def _resume_after(header: str | None, query: str | None) -> int | None:
    raw = header if header not in (None, "") else query
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise Invalid.field(
            ("header", "Last-Event-ID"),
            "must be a non-negative integer (an event id)",
            "value_error",
        )
    return int(raw)


async def _check_replay(ctx: AppContext, resume: int | None) -> None:
    """A resume point too far back would replay (and sign) without bound: refused."""
    if resume is None:
        return
    bound = ctx.settings.sse_max_replay_events
    if await nats_stream.last_sequence(ctx.js) - resume > bound:
        raise Invalid.field(
            ("header", "Last-Event-ID"),
            f"is more than {bound} events back: fetch the current state and reconnect without it",
            "replay_too_far",
        )


async def _take_slot(ctx: AppContext, claims: TokenClaims) -> Slot:
    slot = await ctx.slots.take(claims)
    if slot is None:
        raise TooManyRequests(
            f"At most {ctx.slots.cap} open event streams per user",
            retry_after=max(1, math.ceil(ctx.slots.period)),
        )
    return slot


def _is_terminal(body: dict[str, Any]) -> bool:
    return body.get("status") in TERMINAL_STATUSES


# The comment line a quiet stream sends every `GENVID_SSE_HEARTBEAT_SECONDS`: written by the
# stream itself when the hub's beat says it is due, not by a ping task of its own.
_HEARTBEAT = ServerSentEvent(comment="ping").encode()


async def _encode(ctx: AppContext, user_id: uuid.UUID, event: fanout.Event) -> bytes:
    data = json.dumps(await event_payload(ctx, user_id, event.body), separators=(",", ":"))
    return ServerSentEvent(id=str(event.seq), data=data).encode()


def _encoder(ctx: AppContext) -> fanout.Encode:
    return functools.partial(_encode, ctx)


async def _event(ctx: AppContext, user_id: uuid.UUID, event: fanout.Event) -> bytes:
    frame = await event.frame(user_id, _encoder(ctx))
    SSE_EVENTS.inc()
    return frame


async def _snapshot(ctx: AppContext, user_id: uuid.UUID, generation: Generation) -> bytes:
    return await _event(
        ctx, user_id, fanout.Event(SNAPSHOT_ID, nats_stream.transition_body(generation))
    )


def _sse(stream: FrameSource) -> EventStreamResponse:
    return EventStreamResponse(stream, headers={"Cache-Control": "no-cache"})


async def _load(ctx: AppContext, user_id: uuid.UUID, generation_id: uuid.UUID) -> Generation | None:
    # A short session of its own: a stream must not hold a database connection.
    async with ctx.sessions() as session:
        return await generations.get_owned(session, user_id, generation_id)


class _Stream:
    """What both event streams keep while open: one slotted object each (no closure, no
    generator), since the garbage collector walks every open stream's objects."""

    __slots__ = ("_feed", "ctx", "slot", "user_id")

    def __init__(self, ctx: AppContext, user_id: uuid.UUID, slot: Slot) -> None:
        self.ctx = ctx
        self.user_id = user_id
        self.slot = slot
        self._feed: fanout.Feed | None = None

    async def _open(self, generation_id: uuid.UUID | None, subject: str, after: int) -> fanout.Feed:
        feed = self._feed = await fanout.open_feed(
            self.ctx.hub,
            self.user_id,
            generation_id,
            subject,
            after=after,
            encode=_encoder(self.ctx),
            expires_in=self.slot.seconds_left(),
        )
        self.slot.on_end(self._slot_ended)
        return feed

    def _slot_ended(self) -> None:
        if self._feed is not None:
            self._feed.end("slot")

    def _over(self, feed: fanout.Feed) -> bool:
        """The client reconnects (with Last-Event-ID, maybe elsewhere, with a fresh token),
        or not at all (its session ended)."""
        return feed.ended is not None or not self.slot.still_valid()

    def disconnected(self) -> None:
        self.slot.end()

    async def close(self) -> None:
        if self._feed is not None:
            self._feed.close()
        await self.ctx.slots.give_back(self.slot)


@dataclass(frozen=True)
class _StreamRequest:
    """What both event streams take: the caller, their token, and where to resume."""

    user: User
    claims: TokenClaims
    ctx: AppContext
    resume: int | None


async def _stream_request(
    user: CurrentUser,
    claims: AccessClaims,
    ctx: Ctx,
    last_event_id: LastEventIdHeader = None,
    last_event_id_query: LastEventIdQuery = None,
) -> _StreamRequest:
    return _StreamRequest(user, claims, ctx, _resume_after(last_event_id, last_event_id_query))


StreamRequest = Annotated[_StreamRequest, Depends(_stream_request)]


@router.get(
    "/generations/{generation_id}/events",
    response_class=EventSourceResponse,
    responses={
        **_SSE_RESPONSES,
        204: {"description": "Finished, and the client has seen it"},
        **responses((NotFound, "No such generation (or not yours)")),
    },
)
async def generation_events(generation_id: uuid.UUID, request: StreamRequest) -> Response:
    """The generation's transitions from the first (a late client still sees QUEUED), ending
    after the terminal one."""
    ctx, user, resume = request.ctx, request.user, request.resume
    generation = await _load(ctx, user.id, generation_id)
    if generation is None:
        raise NotFound("Generation")
    subject = job_subject(user.id, generation.id)
    last = await nats_stream.last_event(ctx.js, subject)
    finished = generation.status in TERMINAL_STATUSES
    ended_in_stream = last is not None and _is_terminal(last.body)
    # Nothing will follow what the client has: 204 stops EventSource from reconnecting.
    if (ended_in_stream and resume is not None and last is not None and resume >= last.seq) or (
        finished and resume == SNAPSHOT_ID
    ):
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    # 0 here asks for the generation's own history (or its snapshot), bounded by itself.
    await _check_replay(ctx, resume or None)
    # The database knows an end the stream lacks: replay what the stream has, then a snapshot.
    needs_snapshot = finished and not ended_in_stream
    slot = await _take_slot(ctx, request.claims)
    return _sse(_GenerationStream(ctx, user.id, slot, generation, resume, last, needs_snapshot))


class _GenerationStream(_Stream):
    """`GET /generations/{id}/events`: its transitions, then its end."""

    __slots__ = ("generation", "last", "needs_snapshot", "resume")

    def __init__(
        self,
        ctx: AppContext,
        user_id: uuid.UUID,
        slot: Slot,
        generation: Generation,
        resume: int | None,
        last: nats_stream.StreamEvent | None,
        needs_snapshot: bool,
    ) -> None:
        super().__init__(ctx, user_id, slot)
        self.generation = generation
        self.resume = resume
        self.last = last
        self.needs_snapshot = needs_snapshot

    async def run(self, write: Write) -> None:
        ctx, user_id, generation, last = self.ctx, self.user_id, self.generation, self.last
        subject = job_subject(user_id, generation.id)
        feed = await self._open(generation.id, subject, self.resume or 0)
        if self.needs_snapshot and (
            last is None or (self.resume is not None and self.resume >= last.seq)
        ):
            await write(await _snapshot(ctx, user_id, generation))
            return
        recheck = max(ctx.settings.sse_heartbeat_seconds, 1.0) * 2
        heard_at = time.monotonic()
        while True:
            event = await feed.next()
            if self._over(feed):
                return
            if event is None:
                await write(_HEARTBEAT)
                if time.monotonic() - heard_at < recheck:
                    continue
                # Quiet for a while: did it finish without its event reaching us?
                heard_at = time.monotonic()
                current = await _load(ctx, user_id, generation.id)
                if current is None:
                    return
                if current.status in TERMINAL_STATUSES:
                    tail = await nats_stream.last_event(ctx.js, subject)
                    if tail is None or not _is_terminal(tail.body):
                        await write(await _snapshot(ctx, user_id, current))
                        return
                continue
            heard_at = time.monotonic()
            await write(await _event(ctx, user_id, event))
            if _is_terminal(event.body):
                return
            if self.needs_snapshot and last is not None and event.seq >= last.seq:
                await write(await _snapshot(ctx, user_id, generation))
                return


@router.get("/events", response_class=EventSourceResponse, responses=_SSE_RESPONSES)
async def my_events(request: StreamRequest) -> Response:
    """Transitions of all the caller's generations: new ones only, or everything after
    Last-Event-ID. Never ends by itself."""
    ctx, user, resume = request.ctx, request.user, request.resume
    await _check_replay(ctx, resume)
    # "New" means after this request was handled, not after the hub happens to see it.
    after = await nats_stream.last_sequence(ctx.js) if resume is None else resume
    slot = await _take_slot(ctx, request.claims)
    return _sse(_UserStream(ctx, user.id, slot, after))


class _UserStream(_Stream):
    """`GET /events`: the user's transitions after `after`, never ending by itself."""

    __slots__ = ("after",)

    def __init__(self, ctx: AppContext, user_id: uuid.UUID, slot: Slot, after: int) -> None:
        super().__init__(ctx, user_id, slot)
        self.after = after

    async def run(self, write: Write) -> None:
        ctx, user_id = self.ctx, self.user_id
        feed = await self._open(None, user_subjects(user_id), self.after)
        while True:
            event = await feed.next()
            if self._over(feed):
                return
            await write(_HEARTBEAT if event is None else await _event(ctx, user_id, event))
