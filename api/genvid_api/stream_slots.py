"""The slots of this process's event streams under the per-user cap, renewed all together.

A slot renewed by its own stream meant one UPDATE per stream and period through the database
pool, all of them right after an event woke the streams: at 10,000 streams, a storm of queries
ahead of every delivery. Instead the process's `SlotKeeper` renews every slot it holds with one
statement per period (`sse_streams.renew_all`), and ends at once the streams whose session no
longer stands (the user deactivated, logout-all, a password change). A stream itself only
checks its access token's expiry, which needs no query.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from genvid_api.db import SessionFactory
from genvid_api.queries import sse_streams
from genvid_api.security import TokenClaims
from genvid_contracts.tasks import stop

log = logging.getLogger(__name__)

# A slot outlives a few missed renewals, not a dead process for long.
TTL_PERIODS = 3


@dataclass(eq=False, slots=True)
class Slot:
    """An open stream's place under the cap, and the session it serves."""

    id: uuid.UUID
    claims: TokenClaims
    ended: bool = False
    _on_end: Callable[[], None] | None = None

    def seconds_left(self) -> float:
        """Until the access token expires."""
        return max(0.0, (self.claims.expires_at - datetime.now(UTC)).total_seconds())

    def still_valid(self) -> bool:
        """False once the token has expired, the keeper learnt that the session ended, or
        the client left."""
        return not self.ended and datetime.now(UTC) < self.claims.expires_at

    def on_end(self, callback: Callable[[], None]) -> None:
        """Have `callback` wake the stream when it must end (at once if it must)."""
        self._on_end = callback
        if self.ended:
            callback()

    def end(self) -> None:
        """The session ended or the client left: the stream ends."""
        self.ended = True
        if self._on_end is not None:
            self._on_end()


class SlotKeeper:
    """The process's slots: taken and given back by its streams, renewed by one task."""

    def __init__(self, sessions: SessionFactory, period: float, cap: int) -> None:
        self._sessions = sessions
        self.period = period
        self.cap = cap
        self._slots: dict[uuid.UUID, Slot] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def ttl(self) -> float:
        return self.period * TTL_PERIODS

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="genvid-sse-slots")

    async def close(self) -> None:
        await stop(self._task)

    async def take(self, claims: TokenClaims) -> Slot | None:
        """A slot for a new stream of the claims' user; None if they hold the cap already."""
        slot = Slot(uuid.uuid4(), claims)
        async with self._sessions() as session:
            if not await sse_streams.take(session, slot.id, claims.user_id, self.cap, self.ttl):
                return None
        self._slots[slot.id] = slot
        return slot

    async def give_back(self, slot: Slot) -> None:
        self._slots.pop(slot.id, None)
        slot._on_end = None  # it refers to the stream: no cycle left for the collector
        with anyio.move_on_after(5, shield=True):
            async with self._sessions() as session:
                await sse_streams.give_back(session, slot.id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.renew()
            except Exception:  # the database away: slots expire after TTL_PERIODS of this
                log.exception("SSE slots: renewal failed, trying again in %.0f s", self.period)

    async def renew(self) -> None:
        """Renew every slot held; end the streams whose session ended (or whose slot is gone)."""
        slots = list(self._slots.values())
        if not slots:
            return
        async with self._sessions() as session:
            valid = await sse_streams.renew_all(
                session, [(slot.id, slot.claims.session_version) for slot in slots], self.ttl
            )
        for slot in slots:
            if slot.id not in valid and slot.id in self._slots:
                slot.end()
