"""Likes: one per user and video (the primary key), set and cleared idempotently.

`videos.like_count` moves in the same transaction, by the statement-level triggers of
migration 0002_social: an insert that conflicts (already liked) or a delete that finds nothing
(not liked) changes no row and so no count.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.models import Like, LikeState, Video
from genvid_api.queries import videos


async def set_liked(
    session: AsyncSession, user_id: uuid.UUID, video_id: uuid.UUID, liked: bool
) -> LikeState:
    """Like or unlike and commit; NotFound if the video is not visible."""
    # FOR KEY SHARE: the video cannot be deleted under us (no foreign key error half-way).
    await videos.get_visible(session, video_id, key_share=True)
    if liked:
        await session.exec(
            pg_insert(Like).values(user_id=user_id, video_id=video_id).on_conflict_do_nothing()
        )
    else:
        await session.exec(
            sa.delete(Like).where(col(Like.user_id) == user_id, col(Like.video_id) == video_id)
        )
    count = (
        await session.exec(select(col(Video.like_count)).where(col(Video.id) == video_id))
    ).one()
    await session.commit()
    return LikeState(video_id=video_id, liked=liked, like_count=count)
