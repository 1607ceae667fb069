"""Follows: (follower, followee) pairs, one per pair (the primary key), never oneself (a CHECK).

Following and unfollowing are idempotent. The lists are newest first, keyset-paginated on
(follows.created_at, the other user's id).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api import cursors
from genvid_api.models import Follow, FollowUser, User


class UserGone(Exception):
    """The followee was deleted while we inserted (the foreign key said so)."""


async def set_following(
    session: AsyncSession, follower_id: uuid.UUID, followee_id: uuid.UUID, following: bool
) -> int:
    """Follow or unfollow and commit; returns the followee's follower count."""
    if following:
        try:
            await session.exec(
                pg_insert(Follow)
                .values(follower_id=follower_id, followee_id=followee_id)
                .on_conflict_do_nothing()
            )
        except IntegrityError:
            await session.rollback()
            raise UserGone from None
    else:
        await session.exec(
            sa.delete(Follow).where(
                col(Follow.follower_id) == follower_id, col(Follow.followee_id) == followee_id
            )
        )
    count = await follower_count(session, followee_id)
    await session.commit()
    return count


async def follower_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    statement = select(sa.func.count()).select_from(Follow).where(Follow.followee_id == user_id)
    return (await session.exec(statement)).one()


async def is_following(
    session: AsyncSession, follower_id: uuid.UUID, followee_id: uuid.UUID
) -> bool:
    statement = select(Follow).where(
        col(Follow.follower_id) == follower_id, col(Follow.followee_id) == followee_id
    )
    return (await session.exec(statement)).first() is not None


async def _list(
    session: AsyncSession,
    mine: Any,
    other: Any,
    user_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[FollowUser], str | None]:
    """Rows where column `mine` is user_id; the users in column `other`, newest first."""
    statement = (
        select(col(User.id), col(User.username), col(Follow.created_at))
        .select_from(Follow)
        .join(User, col(User.id) == other)
        .where(mine == user_id)
    )
    if after is not None:
        statement = statement.where(sa.tuple_(col(Follow.created_at), other) < sa.tuple_(*after))
    statement = statement.order_by(col(Follow.created_at).desc(), other.desc()).limit(limit + 1)
    rows = (await session.exec(statement)).all()
    items = [FollowUser(id=row[0], username=row[1], followed_at=row[2]) for row in rows[:limit]]
    if len(rows) > limit:
        last = items[-1]
        return items, cursors.encode(last.followed_at, last.id)
    return items, None


async def followers(
    session: AsyncSession, user_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> tuple[list[FollowUser], str | None]:
    return await _list(
        session, col(Follow.followee_id), col(Follow.follower_id), user_id, limit, after
    )


async def following(
    session: AsyncSession, user_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> tuple[list[FollowUser], str | None]:
    return await _list(
        session, col(Follow.follower_id), col(Follow.followee_id), user_id, limit, after
    )
