"""One JetStream feed per api process, fanned out in memory to the event streams that want it.

A consumer per SSE connection made the NATS server's work, and its consumer limit, grow with
the clients. Instead each api process keeps one push consumer on the whole `GENVID_JOBS`
stream (the `Hub`), decodes a message only when one of its streams wants it, and hands it to the
open streams of the user its subject names (and, for a per-generation stream, of that
generation). The payload a client receives depends only on the event and its owner, so it is
built (and its URLs signed) once per event, however many of the owner's streams send it.

A stream that has something to catch up on (`Last-Event-ID`, or a generation's history) first
reads it with direct gets of the stream, which leave no consumer behind, while the hub already
buffers its live events; the two meet at the hub's position when the stream registered, and a
stream sequence is never sent twice (`Feed`). The SSE `id:` stays the stream sequence, so a
client may resume on any api process.

Each stream has a bounded queue: a client that does not keep up is ended (EventSource then
reconnects with Last-Event-ID and replays what it missed), never buffered without bound. A
stream keeps as few objects as it can (the garbage collector's full collections walk them all,
ten thousand streams' worth): no timer of its own, the hub's one beat sends the heartbeats of
quiet streams and ends those whose access token expired.

NATS outages: the hub keeps the stream sequence it has dispatched up to, and subscribes again
from the next one whenever its consumer goes silent (no message and no heartbeat for a few
heartbeat periods), skips a message, or vanishes (NATS restarted, the stream deleted): open
streams only see their events arrive late, none lost or repeated. Only when the stream was
created again (its creation time changed, or its sequences restarted below the hub's position)
are all open streams ended, since their event ids no longer name anything. The hub learns of a
deletion or creation at once from JetStream's advisories, and until it has subscribed to the
new stream new streams wait (`ready`) instead of joining at the old stream's position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, Header

from genvid_api.nats_stream import NatsUnavailable, decode, require_connected
from genvid_api.sse_response import server_exit
from genvid_contracts.events import STREAM_NAME, SUBJECT_PREFIX
from genvid_contracts.tasks import stop

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
# Heartbeat periods without any message before the hub's consumer is taken for lost.
SILENT_PERIODS = 3
# Without interest (the process died) the server removes the hub's consumer after this.
INACTIVE_THRESHOLD_SECONDS = 30.0
# How long a new stream waits for the hub's first subscription before answering 503.
READY_TIMEOUT_SECONDS = 5.0
# The period of the hub's beat: how late a heartbeat or the end of an expired stream may be.
BEAT_SECONDS = 1.0

Encode = Callable[[uuid.UUID, "Event"], Coroutine[Any, Any, bytes]]


@dataclass(eq=False, slots=True)
class Event:
    """One message of the stream, shared by every stream it goes to."""

    seq: int
    body: dict[str, Any]
    _frames: dict[uuid.UUID, asyncio.Task[bytes]] = field(default_factory=dict)

    def build(self, user_id: uuid.UUID, encode: Encode) -> asyncio.Task[bytes]:
        """Start encoding the event as `user_id` sees it, once per owner. The hub starts it
        when it queues the event, before the owner's streams wake: an encoding that needs no
        I/O is then done when they ask for it, and none of them waits a second time."""
        task = self._frames.get(user_id)
        if task is None:
            task = asyncio.create_task(encode(user_id, self))
            self._frames[user_id] = task
        return task

    async def frame(self, user_id: uuid.UUID, encode: Encode) -> bytes:
        """The event as `user_id` sees it, encoded for the wire: built once per owner, the
        streams waiting for the same result (cancelling one does not cancel it)."""
        task = self.build(user_id, encode)
        if task.done():
            return task.result()
        return await asyncio.shield(task)


class Listener:
    """An open stream's place in the hub: its queue of live events (bounded), and the one
    future its stream waits on. Slotted and lean: the garbage collector's full collections
    walk every object an open stream keeps, so each one counts ten thousand times."""

    __slots__ = (
        "_beat",
        "_events",
        "_waiter",
        "deadline",
        "encode",
        "ended",
        "generation_id",
        "limit",
        "owner",
        "quiet_since",
        "user_id",
    )

    def __init__(
        self,
        owner: uuid.UUID,
        generation_id: str | None,
        limit: int,
        encode: Encode,
        deadline: float,
    ) -> None:
        self.owner = owner
        self.user_id = str(owner)
        self.encode = encode
        self.generation_id = generation_id
        self.limit = limit
        # When (monotonic) the stream's access token expires: the hub's beat ends it then.
        self.deadline = deadline
        # Since when (monotonic) the stream has sent nothing: the beat's heartbeat is due after.
        self.quiet_since = time.monotonic()
        self.ended: str | None = None
        self._events: deque[Event] | None = None  # most streams are idle: no queue until used
        self._waiter: asyncio.Future[None] | None = None
        self._beat = False

    def offer(self, event: Event) -> bool:
        """Queue the event; False when the queue is full."""
        if self._events is None:
            self._events = deque()
        elif len(self._events) >= self.limit:
            return False
        self._events.append(event)
        event.build(self.owner, self.encode)
        self._wake()
        return True

    def end(self, reason: str) -> None:
        self.ended = self.ended or reason
        self._wake()

    def beat(self, now: float, heartbeat: float) -> None:
        """The hub's periodic call: end the stream once its token has expired, or have it
        send a heartbeat once it has been quiet for `heartbeat` seconds."""
        if now >= self.deadline:
            self.end("expired")
        elif now - self.quiet_since >= heartbeat:
            self._beat = True
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Event | None:
        """The next live event; None when a heartbeat is due, or once ended."""
        while not self._events:
            if self.ended:
                return None
            if self._beat:
                self._beat = False
                self.quiet_since = time.monotonic()
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self.quiet_since = time.monotonic()
        return self._events.popleft()


def _route(subject: str) -> tuple[str, str] | None:
    """The user and generation a subject `genvid.jobs.<user>.<generation>` names."""
    prefix = f"{SUBJECT_PREFIX}."
    if not subject.startswith(prefix):
        return None
    user, _, generation = subject.removeprefix(prefix).partition(".")
    return (user, generation) if user and generation else None


class Hub:
    """The process's one consumer of the stream and its listeners, by user."""

    def __init__(self, nc: NATS, queue_limit: int, heartbeat: float) -> None:
        self._nc = nc
        self.js = nc.jetstream()
        self._queue_limit = queue_limit
        self._heartbeat = heartbeat
        self._listeners: dict[str, set[Listener]] = {}
        # The stream sequence dispatched up to; None until the first subscription.
        self.position: int | None = None
        self._ready = asyncio.Event()
        self._broken = asyncio.Event()
        # When the stream was created, as of the last subscription: another value is a new stream.
        self._stream_created: object = None
        self._advisories: Subscription | None = None
        self._sub: Subscription | None = None
        self._consumer: str | None = None
        self._generation = 0
        self._expected = 1
        self._heard_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self.shutting_down = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="genvid-sse-hub")
        self._shutdown_task = asyncio.create_task(self._end_on_shutdown(), name="genvid-sse-end")
        self._beat_task = asyncio.create_task(self._beat(), name="genvid-sse-beat")

    async def _beat(self) -> None:
        """One clock for every stream of the process (not a timer each, re-armed at every
        event): heartbeats of quiet streams, and the end of those whose token expired, at
        most `BEAT_SECONDS` late."""
        period = min(self._heartbeat, BEAT_SECONDS)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for listeners in self._listeners.values():
                for listener in listeners:
                    listener.beat(now, self._heartbeat)

    async def _end_on_shutdown(self) -> None:
        """One waiter for the process ends every listener once the server begins to shut
        down (not a watcher per stream): their streams end, and the server can stop."""
        await server_exit()
        self.shutting_down = True
        self._end_all("shutdown")

    def _end_all(self, reason: str) -> None:
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                listener.end(reason)

    async def close(self) -> None:
        await stop(self._task, self._shutdown_task, self._beat_task)
        self._end_all("shutdown")
        await self._unsubscribe()
        if self._advisories is not None:
            with contextlib.suppress(Exception):
                await self._advisories.unsubscribe()

    @property
    def listener_count(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())

    async def ready(self) -> int:
        """The hub's position once it has one (NatsUnavailable if it has none in time).

        Also while the stream is being replaced (deleted, or created again) the hub is not
        ready: a stream that joined then would start from a position of the old stream."""
        require_connected(self.js)
        if not self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                    await self._ready.wait()
        if self.position is None or not self._ready.is_set():
            raise NatsUnavailable("the event feed is not subscribed yet")
        return self.position

    def join(
        self,
        user_id: uuid.UUID,
        generation_id: uuid.UUID | None,
        encode: Encode,
        expires_in: float,
    ) -> tuple[Listener, int]:
        """A new listener, and the position after which the hub delivers to it (synchronous:
        nothing is dispatched between the two)."""
        assert self.position is not None, "join after ready()"
        listener = Listener(
            user_id,
            None if generation_id is None else str(generation_id),
            self._queue_limit,
            encode,
            time.monotonic() + expires_in,
        )
        self._listeners.setdefault(listener.user_id, set()).add(listener)
        if self.shutting_down:
            listener.end("shutdown")
        return listener, self.position

    def leave(self, listener: Listener) -> None:
        listeners = self._listeners.get(listener.user_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[listener.user_id]

    # -- the consumer ---------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                if self._nc.is_connected:
                    await self._subscribe()
                    await self._watch()
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                log.warning("SSE hub: subscription lost, subscribing again: %r", exc)
            await self._unsubscribe()
            await asyncio.sleep(1.0)

    async def _watch(self) -> None:
        """Return once the consumer is lost: silent, a message skipped, or NATS gone."""
        silence = HEARTBEAT_SECONDS * SILENT_PERIODS
        while self._nc.is_connected and not self._broken.is_set():
            if time.monotonic() - self._heard_at > silence:
                log.warning("SSE hub: no message or heartbeat for %.0f s", silence)
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEARTBEAT_SECONDS):
                    await self._broken.wait()

    async def _on_stream_advisory(self, msg: Msg) -> None:
        """The stream was deleted or created: subscribe again now, not once the consumer's
        silence tells (seconds during which new streams would join at a stale position)."""
        if msg.subject.split(".")[-2] in ("CREATED", "DELETED"):
            self._ready.clear()
            self._broken.set()

    async def _subscribe(self) -> None:
        if self._advisories is None:
            self._advisories = await self._nc.subscribe(
                f"$JS.EVENT.ADVISORY.STREAM.*.{STREAM_NAME}", cb=self._on_stream_advisory
            )
        info = await self.js.stream_info(STREAM_NAME)
        last = int(info.state.last_seq)
        recreated = self._stream_created not in (None, info.created)
        if self.position is not None and (recreated or last < self.position):
            log.warning("SSE hub: stream %s was recreated: ending open streams", STREAM_NAME)
            self._end_all("reset")
            self.position = last
        self._stream_created = info.created
        start = (last if self.position is None else self.position) + 1
        # Dispatched up to here from now on: the consumer may deliver before its creation
        # answers, and what it delivers then must move the position (a stream that joins
        # later replays it) rather than find none.
        self.position = start - 1
        self._generation += 1
        self._expected = 1
        self._broken.clear()
        self._heard_at = time.monotonic()
        inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(inbox, cb=self._callback(self._generation))
        config = ConsumerConfig(
            deliver_subject=inbox,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=AckPolicy.NONE,
            max_deliver=1,
            flow_control=True,
            idle_heartbeat=HEARTBEAT_SECONDS,
            inactive_threshold=INACTIVE_THRESHOLD_SECONDS,
            mem_storage=True,
        )
        self._consumer = (await self.js.add_consumer(STREAM_NAME, config)).name
        self._ready.set()
        log.info("SSE hub: consuming %s from sequence %d", STREAM_NAME, start)

    async def _unsubscribe(self) -> None:
        sub, consumer = self._sub, self._consumer
        self._sub = self._consumer = None
        self._generation += 1  # whatever the old subscription still delivers is ignored
        with anyio.move_on_after(3, shield=True):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            if consumer is not None and self._nc.is_connected:
                with contextlib.suppress(Exception):
                    await self.js.delete_consumer(STREAM_NAME, consumer)

    def _callback(self, generation: int) -> Callable[[Msg], Awaitable[None]]:
        async def on_message(msg: Msg) -> None:
            if generation != self._generation:
                return
            self._heard_at = time.monotonic()
            if msg.headers and msg.headers.get(Header.STATUS):
                await self._on_control(msg)
            else:
                self._on_data(msg)

        return on_message

    async def _on_control(self, msg: Msg) -> None:
        """Heartbeats (which say which delivery came last) and flow control requests; any
        other status (the consumer deleted) means the consumer is lost."""
        headers = msg.headers or {}
        last = headers.get(Header.LAST_CONSUMER)
        if headers.get(Header.STATUS) != "100" or (
            last is not None and int(last) != self._expected - 1
        ):
            self._broken.set()  # a delivery never reached us, or nothing more will
        if msg.reply:
            await self._nc.publish(msg.reply)

    def _on_data(self, msg: Msg) -> None:
        sequence = msg.metadata.sequence
        if sequence.consumer != self._expected:
            self._broken.set()
            return
        self._expected += 1
        assert self.position is not None
        if sequence.stream <= self.position:
            return
        self.position = sequence.stream
        route = _route(msg.subject)
        listeners = self._listeners.get(route[0]) if route else None
        if not route or not listeners:
            return
        body = decode(msg.data)
        if body is None:
            log.warning("SSE hub: skipping undecodable message on %s", msg.subject)
            return
        event = Event(sequence.stream, body)
        for listener in list(listeners):
            if listener.generation_id not in (None, route[1]):
                continue
            if not listener.offer(event):
                log.info("SSE hub: ending a stream of user %s that fell behind", route[0])
                listener.end("overflow")
                self.leave(listener)


class Feed:
    """One stream's events in stream order: what it missed (direct gets), then the hub's."""

    __slots__ = ("_hub", "_listener", "_live_from", "_replaying", "_subject", "cursor")

    def __init__(
        self, hub: Hub, listener: Listener, subject: str, after: int, live_from: int
    ) -> None:
        self._hub = hub
        self._listener = listener
        self._subject = subject
        self._live_from = live_from
        self._replaying = after < live_from
        self.cursor = after  # the last stream sequence sent (or passed over)

    @property
    def ended(self) -> str | None:
        return self._listener.ended

    def end(self, reason: str) -> None:
        """End the stream: its pending or next `next()` returns None."""
        self._listener.end(reason)

    def close(self) -> None:
        """Leave the hub (once the stream is over)."""
        self._hub.leave(self._listener)

    async def next(self) -> Event | None:
        """The next event; None when a heartbeat is due, or once ended."""
        if self._replaying:
            event = await self._replay_next()
            if event is not None:
                return event
            self._replaying = False
        while True:
            event = await self._listener.get()
            if event is None or event.seq > self.cursor:
                break
        if event is not None:
            self.cursor = event.seq
        return event

    async def _replay_next(self) -> Event | None:
        while True:
            try:
                raw = await self._hub.js.get_msg(
                    STREAM_NAME, seq=self.cursor + 1, subject=self._subject, next=True
                )
            except nats.js.errors.NotFoundError:
                return None
            if raw.seq is None or raw.seq > self._live_from:
                return None
            self.cursor = raw.seq
            body = decode(raw.data)
            if body is not None:
                return Event(raw.seq, body)
            log.warning("skipping undecodable message on %s", self._subject)


async def open_feed(
    hub: Hub,
    user_id: uuid.UUID,
    generation_id: uuid.UUID | None,
    subject: str,
    *,
    after: int,
    encode: Encode,
    expires_in: float,
) -> Feed:
    """The events after stream sequence `after` on `subject` (one generation's, or all the
    user's), until `Feed.close()`. It ends (`Feed.ended`) when the server shuts down, or
    `expires_in` seconds from now (the stream's access token expires)."""
    await hub.ready()
    listener, live_from = hub.join(user_id, generation_id, encode, expires_in)
    return Feed(hub, listener, subject, after, live_from)
