"""A fixed-window request limit shared by every api process, kept in Postgres.

One conditional upsert per request counts it in its key's current window (`rate_limit_windows`)
only while the count is under the limit, so concurrent requests on any number of processes
never pass it; the same statement drops the key's older windows, so the table holds about one
row per key in use. Any route can use it with its own key (`generate:<user id>`, say), or
several limits at once (`hit_all`: per address, per account, per minute and per hour).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

_HIT = sa.text(
    """
    WITH expired AS (
        DELETE FROM rate_limit_windows WHERE key = :key AND window_start < :window
    )
    INSERT INTO rate_limit_windows AS w (key, window_start, count)
    VALUES (:key, :window, 1)
    ON CONFLICT (key, window_start) DO UPDATE SET count = w.count + 1 WHERE w.count < :limit
    RETURNING w.count
    """
)


@dataclass(frozen=True)
class Limited(Exception):
    """Over the limit: try again in `retry_after` seconds (when the window ends)."""

    retry_after: int


def window_start(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


async def hit(
    session: AsyncSession, key: str, limit: int, moment: datetime, window_seconds: int = 60
) -> None:
    """Count one request for `key` and commit; raise Limited if the window is full.

    A limit of 0 turns it off. Committed at once: a request counts even if what follows fails.
    """
    if limit <= 0:
        return
    start = window_start(moment, window_seconds)
    result = await (await session.connection()).execute(
        _HIT, {"key": key, "window": start, "limit": limit}
    )
    counted = result.first() is not None
    await session.commit()
    if not counted:
        left = start + timedelta(seconds=window_seconds) - moment
        raise Limited(max(1, math.ceil(left.total_seconds())))


@dataclass(frozen=True)
class Limit:
    """At most `limit` requests per `window_seconds` for `key` (0: no limit)."""

    key: str
    limit: int
    window_seconds: int = 60


async def hit_all(session: AsyncSession, limits: Sequence[Limit], moment: datetime) -> None:
    """Count the request against each limit in turn; raise Limited at the first that is full
    (the ones after it are not counted: a refused request spends nothing more)."""
    for limit in limits:
        await hit(session, limit.key, limit.limit, moment, limit.window_seconds)
