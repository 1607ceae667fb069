"""Mirrors transitions into Postgres (`video_generation_jobs`), for the api's reads.

The row is created by the api; the operator only moves it forward. `event_seq` makes the
update idempotent and monotonic: replaying a transition (the operator syncs the current one
again after a restart) or an older one changes nothing, and a row in a final state (which the
api may also set, for a generation whose resource it never created) stays so. A final state
settles the generation's budget reservation in the same transaction, once; any other
transition is the one UPDATE alone. The pool keeps a connection's session as it is when given
back (no reset query): the operator sets nothing on a session that would outlive a statement.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import asyncpg

from genvid_contracts.events import TransitionEvent
from genvid_contracts.status import TERMINAL_STATUSES
from genvid_operator.admission import settle

_UPDATE = """
UPDATE video_generation_jobs SET
    status = $2, reason = $3, message = $4, attempts = $5,
    bucket = $6, object_name = $7, poster_object = $8, size_bytes = $9,
    video_duration_seconds = $10, cost_usd = $11, started_at = $12, finished_at = $13,
    event_seq = $14, updated_at = now()
WHERE id = $1 AND event_seq < $14 AND status <> ALL($15::text[])
RETURNING status, cost_usd, started_at, reserved_micros
"""
_TERMINAL = sorted(TERMINAL_STATUSES)


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What the pool runs on a connection given back, after rolling back a transaction left
    open: nothing. asyncpg's default resets the session (advisory locks, cursors, LISTEN,
    settings) with one more round trip per query, and the operator leaves none of them
    behind: its only lock is transaction-scoped (`admission`), it sets, listens and holds
    cursors never."""


class GenerationMirror:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, database_url: str) -> GenerationMirror:
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, reset=_keep_session)
        return cls(pool)

    async def write(self, event: TransitionEvent) -> bool:
        """Apply the event; False when it changes nothing: no row (a VideoGeneration made by
        hand), or the row already holds this transition or a later one (a transition synced
        again after a restart), or a final state."""
        job_id = _uuid(event["id"])
        if job_id is None:
            return False
        cost = event.get("cost_usd")
        values = (
            job_id,
            event["status"],
            event.get("reason"),
            event.get("message"),
            event.get("attempts", 0),
            event.get("bucket"),
            event.get("object_name"),
            event.get("poster_object"),
            event.get("size_bytes"),
            event.get("duration_seconds"),
            Decimal(cost) if cost is not None else None,
            _time(event.get("started_at")),
            _time(event.get("finished_at")),
            event["seq"],
            _TERMINAL,
        )
        if event["status"] not in TERMINAL_STATUSES:
            # The row it moves takes this status, so there is nothing to settle: the one
            # statement needs no transaction around it (BEGIN and COMMIT are round trips too).
            return await self._pool.fetchrow(_UPDATE, *values) is not None
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(_UPDATE, *values)
            if row is not None:
                await settle(connection, job_id, row)
        return row is not None

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def close(self) -> None:
        await self._pool.close()
