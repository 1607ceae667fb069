"""Queries on `sse_streams`: the open event streams of every api process, for the per-user cap.

A stream takes a slot when it opens (refused when the user already holds the cap's worth of
unexpired ones), renews it while it runs, which is also when it learns whether its session
still stands (the user active, the session version unchanged), and gives it back when it ends.
A process that dies leaves slots behind that stop counting once they expire.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

# Serializes one user's slot takers across processes (pg_advisory_xact_lock's first key).
_LOCK_SPACE = 7395002

_LOCK = sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:user_id))")

_TAKE = sa.text(
    """
    WITH expired AS (
        DELETE FROM sse_streams WHERE user_id = :user_id AND expires_at <= now()
    )
    INSERT INTO sse_streams (id, user_id, expires_at)
    SELECT :id, :user_id, now() + make_interval(secs => :ttl)
    WHERE (
        SELECT count(*) FROM sse_streams WHERE user_id = :user_id AND expires_at > now()
    ) < :cap
    RETURNING id
    """
)

_RENEW = sa.text(
    """
    UPDATE sse_streams AS s SET expires_at = now() + make_interval(secs => :ttl)
    FROM users AS u
    WHERE s.id = :id AND u.id = s.user_id
    RETURNING u.is_active AND u.session_version = :session_version
    """
)

_GIVE_BACK = sa.text("DELETE FROM sse_streams WHERE id = :id")


async def take(
    session: AsyncSession, stream_id: uuid.UUID, user_id: uuid.UUID, cap: int, ttl: float
) -> bool:
    """A slot for a new stream of the user, or False if they hold `cap` already; commits."""
    connection = await session.connection()
    await connection.execute(_LOCK, {"space": _LOCK_SPACE, "user_id": str(user_id)})
    taken = await connection.execute(
        _TAKE, {"id": stream_id, "user_id": user_id, "ttl": ttl, "cap": cap}
    )
    ok = taken.first() is not None
    await session.commit()
    return ok


async def renew(
    session: AsyncSession, stream_id: uuid.UUID, session_version: int, ttl: float
) -> bool:
    """Extend the slot; False if the stream must end (its user deactivated, its session ended,
    or its slot gone); commits."""
    connection = await session.connection()
    renewed = await connection.execute(
        _RENEW, {"id": stream_id, "ttl": ttl, "session_version": session_version}
    )
    row = renewed.first()
    await session.commit()
    return row is not None and bool(row[0])


async def give_back(session: AsyncSession, stream_id: uuid.UUID) -> None:
    await (await session.connection()).execute(_GIVE_BACK, {"id": stream_id})
    await session.commit()
