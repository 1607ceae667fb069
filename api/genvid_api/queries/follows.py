"""Follows: (follower, followee) pairs, one per pair (the primary key), never oneself (a CHECK).

Following and unfollowing are idempotent. The lists are newest first, keyset-paginated on
(follows.created_at, the other user's id).
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.errors import NotFound
from genvid_api.models import Follow, FollowUser, User
from genvid_api.pagination import PageRequest


async def set_following(
    session: AsyncSession, follower_id: uuid.UUID, followee_id: uuid.UUID, following: bool
) -> int:
    """Follow or unfollow and commit; returns the followee's follower count. NotFound if the
    followee was deleted meanwhile (the foreign key says so)."""
    if following:
        try:
            await session.exec(
                pg_insert(Follow)
                .values(follower_id=follower_id, followee_id=followee_id)
                .on_conflict_do_nothing()
            )
        except IntegrityError:
            raise NotFound("User") from None
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
    page: PageRequest,
) -> tuple[list[FollowUser], str | None]:
    """Rows where column `mine` is user_id; the users in column `other`, newest first."""
    statement = (
        select(col(User.id), col(User.username), col(Follow.created_at))
        .select_from(Follow)
        .join(User, col(User.id) == other)
        .where(mine == user_id)
    )
    if page.after is not None:
        statement = statement.where(
            sa.tuple_(col(Follow.created_at), other) < sa.tuple_(*page.after)
        )
    statement = statement.order_by(col(Follow.created_at).desc(), other.desc()).limit(page.fetch)
    rows = [
        FollowUser(id=other_id, username=username, followed_at=followed_at)
        for other_id, username, followed_at in await session.exec(statement)
    ]
    return page.cut(rows, lambda user: (user.followed_at, user.id))


async def followers(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[list[FollowUser], str | None]:
    return await _list(session, col(Follow.followee_id), col(Follow.follower_id), user_id, page)


async def following(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[list[FollowUser], str | None]:
    return await _list(session, col(Follow.follower_id), col(Follow.followee_id), user_id, page)
