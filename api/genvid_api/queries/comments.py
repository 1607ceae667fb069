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

from genvid_api.errors import Forbidden, NotFound
from genvid_api.models import Author, Comment, CommentPublic, User
from genvid_api.pagination import PageRequest
from genvid_api.queries import videos


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
    """Insert and commit; NotFound if the video is not visible."""
    await videos.get_visible(session, video_id, key_share=True)
    comment = Comment(video_id=video_id, author_id=author.id, body=body)
    session.add(comment)
    await session.commit()
    await session.refresh(comment)
    return _public(comment, author.username)


async def list_for_video(
    session: AsyncSession, video_id: uuid.UUID, page: PageRequest
) -> tuple[list[CommentPublic], str | None]:
    """NotFound if the video is not visible."""
    await videos.get_visible(session, video_id)
    statement = _with_authors().where(col(Comment.video_id) == video_id)
    if page.after is not None:
        statement = statement.where(
            sa.tuple_(col(Comment.created_at), col(Comment.id)) > sa.tuple_(*page.after)
        )
    statement = statement.order_by(col(Comment.created_at), col(Comment.id)).limit(page.fetch)
    rows = [_public(comment, username) for comment, username in await session.exec(statement)]
    return page.cut(rows, lambda comment: (comment.created_at, comment.id))


async def _lock(session: AsyncSession, video_id: uuid.UUID, comment_id: uuid.UUID) -> Permissions:
    """The comment (locked) and its video's owner; NotFound for either."""
    video = await videos.get_visible(session, video_id)
    comment = (
        await session.exec(
            select(Comment)
            .where(col(Comment.id) == comment_id, col(Comment.video_id) == video_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()
    if comment is None:
        raise NotFound("Comment")
    return Permissions(comment=comment, video_owner_id=video.user_id)


async def edit(
    session: AsyncSession, video_id: uuid.UUID, comment_id: uuid.UUID, editor: User, body: str
) -> CommentPublic:
    """Only the author (Forbidden otherwise); NotFound for the video or the comment."""
    found = await _lock(session, video_id, comment_id)
    if found.comment.author_id != editor.id:
        raise Forbidden("Only the author can edit a comment")
    comment = found.comment
    comment.body = body
    comment.edited_at = datetime.now(UTC)
    session.add(comment)
    await session.commit()
    return _public(comment, editor.username)


async def delete(
    session: AsyncSession, video_id: uuid.UUID, comment_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """The author or the video's owner (Forbidden otherwise); NotFound for the video or the
    comment."""
    found = await _lock(session, video_id, comment_id)
    if user_id not in (found.comment.author_id, found.video_owner_id):
        raise Forbidden("Only the author or the video's owner can delete a comment")
    await session.exec(sa.delete(Comment).where(col(Comment.id) == comment_id))
    await session.commit()
