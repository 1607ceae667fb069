"""Queries on `sse_streams`: the open event streams of every api process, for the per-user cap.

A stream takes a slot when it opens (refused when the user already holds the cap's worth of
unexpired ones) and gives it back when it ends. Each api process renews the slots of all its
streams in one statement per period (`renew_all`), which is also when it learns which of them
serve a session that no longer stands (the user deactivated, the session version changed).
A process that dies leaves slots behind that stop counting once they expire.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

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

_RENEW_ALL = sa.text(
    """
    UPDATE sse_streams AS s SET expires_at = now() + make_interval(secs => :ttl)
    FROM users AS u,
        unnest(CAST(:ids AS uuid[]), CAST(:versions AS integer[])) AS mine(id, session_version)
    WHERE s.id = mine.id AND u.id = s.user_id
        AND u.is_active AND u.session_version = mine.session_version
    RETURNING s.id
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


async def renew_all(
    session: AsyncSession, slots: Sequence[tuple[uuid.UUID, int]], ttl: float
) -> set[uuid.UUID]:
    """Extend the slots `(stream id, the session version its token carries)` whose session
    still stands; the ids of those, the others' streams must end; commits."""
    connection = await session.connection()
    renewed = await connection.execute(
        _RENEW_ALL,
        {"ids": [slot for slot, _ in slots], "versions": [v for _, v in slots], "ttl": ttl},
    )
    valid = {row[0] for row in renewed}
    await session.commit()
    return valid


async def give_back(session: AsyncSession, stream_id: uuid.UUID) -> None:
    await (await session.connection()).execute(_GIVE_BACK, {"id": stream_id})
    await session.commit()
