"""Comments on visible videos: oldest first, keyset-paginated on (created_at, id).

`videos.comment_count` follows inserts and deletes in the same transaction (triggers of
migration 0002_social). Only the author edits a comment; the author or the video's owner
deletes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api import cursors, videos
from genvid_api.models import Author, Comment, CommentPublic, User


class VideoNotFound(Exception):
    pass


class CommentNotFound(Exception):
    pass


class NotAllowed(Exception):
    """The comment is visible, but this action on it is not the caller's."""


@dataclass(frozen=True)
class Permissions:
    comment: Comment
    video_owner_id: uuid.UUID


def _public(comment: Comment, username: str) -> CommentPublic:
    return CommentPublic(
        id=comment.id,
        video_id=comment.video_id,
        author=Author(id=comment.author_id, username=username),
        body=comment.body,
        created_at=comment.created_at,
        edited_at=comment.edited_at,
    )


def _with_authors() -> Any:
    return select(Comment, col(User.username)).join(User, col(User.id) == col(Comment.author_id))


async def create(
    session: AsyncSession, video_id: uuid.UUID, author: User, body: str
) -> CommentPublic:
    """Insert and commit; raises VideoNotFound."""
    if await videos.get_visible(session, video_id, key_share=True) is None:
        await session.rollback()
        raise VideoNotFound
    comment = Comment(video_id=video_id, author_id=author.id, body=body)
    session.add(comment)
    await session.commit()
    await session.refresh(comment)
    return _public(comment, author.username)


async def list_for_video(
    session: AsyncSession,
    video_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[CommentPublic], str | None]:
    """Raises VideoNotFound."""
    if await videos.get_visible(session, video_id) is None:
        raise VideoNotFound
    statement = _with_authors().where(col(Comment.video_id) == video_id)
    if after is not None:
        statement = statement.where(
            sa.tuple_(col(Comment.created_at), col(Comment.id)) > sa.tuple_(*after)
        )
    statement = statement.order_by(col(Comment.created_at), col(Comment.id)).limit(limit + 1)
    rows = list((await session.exec(statement)).all())
    items = [_public(comment, username) for comment, username in rows[:limit]]
    if len(rows) > limit:
        last = items[-1]
        return items, cursors.encode(last.created_at, last.id)
    return items, None


async def _lock(session: AsyncSession, video_id: uuid.UUID, comment_id: uuid.UUID) -> Permissions:
    """The comment (locked) and its video's owner; raises VideoNotFound, CommentNotFound."""
    video = await videos.get_visible(session, video_id)
    if video is None:
        await session.rollback()
        raise VideoNotFound
    comment = (
        await session.exec(
            select(Comment)
            .where(col(Comment.id) == comment_id, col(Comment.video_id) == video_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if comment is None:
        await session.rollback()
        raise CommentNotFound
    return Permissions(comment=comment, video_owner_id=video.user_id)


async def edit(
    session: AsyncSession, video_id: uuid.UUID, comment_id: uuid.UUID, editor: User, body: str
) -> CommentPublic:
    """Only the author; raises VideoNotFound, CommentNotFound, NotAllowed."""
    found = await _lock(session, video_id, comment_id)
    if found.comment.author_id != editor.id:
        await session.rollback()
        raise NotAllowed("Only the author can edit a comment")
    comment = found.comment
    comment.body = body
    comment.edited_at = datetime.now(UTC)
    session.add(comment)
    await session.commit()
    return _public(comment, editor.username)


async def delete(
    session: AsyncSession, video_id: uuid.UUID, comment_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """The author or the video's owner; raises VideoNotFound, CommentNotFound, NotAllowed."""
    found = await _lock(session, video_id, comment_id)
    if user_id not in (found.comment.author_id, found.video_owner_id):
        await session.rollback()
        raise NotAllowed("Only the author or the video's owner can delete a comment")
    await session.exec(sa.delete(Comment).where(col(Comment.id) == comment_id))
    await session.commit()
