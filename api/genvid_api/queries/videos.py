"""Queries on videos (published generations) and the feeds made of them.

Visibility: a video is visible to every signed-in user while its row exists and its author is
active; a generation without a `videos` row is private and appears in no feed or listing.
Unpublishing deletes the row (with its likes and comments); the generation stays, private.

Every listing is keyset-paginated on (published_at DESC, id DESC) and fetches a page in one
query: the videos, their authors, counters (denormalized columns, kept by triggers), whether
the viewer liked each one, and the storage coordinates to sign.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.errors import Conflict, Forbidden, NotFound
from genvid_api.models import (
    Follow,
    Generation,
    Like,
    ProfileCounts,
    User,
    Video,
    VideoCreate,
)
from genvid_api.pagination import Key, PageRequest
from genvid_contracts.status import GenerationStatus


@dataclass(frozen=True)
class FeedRow:
    """One video as a listing shows it, from one row of the page query."""

    id: uuid.UUID
    user_id: uuid.UUID
    username: str
    generation_id: uuid.UUID
    title: str
    description: str
    published_at: datetime
    like_count: int
    comment_count: int
    liked_by_me: bool
    aspect_ratio: str
    duration_seconds: int
    bucket: str | None
    object_name: str | None
    poster_object: str | None


def _rows(viewer_id: uuid.UUID) -> Any:
    """The page query without its filter: joins by primary key, one EXISTS on likes' key."""
    liked = (
        sa.exists()
        .where(col(Like.user_id) == viewer_id, col(Like.video_id) == col(Video.id))
        .label("liked_by_me")
    )
    return (
        sa.select(
            col(Video.id),
            col(Video.user_id),
            col(User.username),
            col(Video.generation_id),
            col(Video.title),
            col(Video.description),
            col(Video.published_at),
            col(Video.like_count),
            col(Video.comment_count),
            liked,
            col(Generation.aspect_ratio),
            col(Generation.duration_seconds),
            col(Generation.bucket),
            col(Generation.object_name),
            col(Generation.poster_object),
        )
        .select_from(Video)
        .join(User, col(User.id) == col(Video.user_id))
        .join(Generation, col(Generation.id) == col(Video.generation_id))
        .where(col(User.is_active).is_(True))
    )


def _newest_first() -> tuple[Any, Any]:
    return col(Video.published_at).desc(), col(Video.id).desc()


def _after(statement: Any, key: Key | None) -> Any:
    """Rows strictly after `key` in newest-first order (a row comparison the index can use)."""
    if key is None:
        return statement
    return statement.where(sa.tuple_(col(Video.published_at), col(Video.id)) < sa.tuple_(*key))


async def _page(
    session: AsyncSession, statement: Any, page: PageRequest
) -> tuple[list[FeedRow], str | None]:
    result = await session.exec(statement.order_by(*_newest_first()).limit(page.fetch))
    rows = [FeedRow(**row._mapping) for row in result.all()]
    return page.cut(rows, lambda row: (row.published_at, row.id))


async def public_feed(
    session: AsyncSession, viewer_id: uuid.UUID, page: PageRequest
) -> tuple[list[FeedRow], str | None]:
    """Every visible video, newest first: a walk down ix_videos_published."""
    return await _page(session, _after(_rows(viewer_id), page.after), page)


def _active(user_id: Any) -> Any:
    """The user is not deactivated: an anti-join on the (small) partial index ix_users_inactive,
    not a scan of every user."""
    return ~sa.exists().where(col(User.id) == user_id, col(User.is_active).is_(False))


# How many of the newest videos (after the cursor) the following feed looks through before it
# asks each followee instead; see following_feed.
FOLLOWING_WINDOW = 1000


def _following_keys(viewer_id: uuid.UUID, limit: int, after: Key | None) -> Any:
    """(published_at, id) of the page's videos, in one statement with two strategies.

    1. The newest FOLLOWING_WINDOW videos after the cursor, whoever published them (an
       index-only walk of ix_videos_published), kept if their author is followed. If that
       finds limit+1, they are the page: nothing older than the window can come before them.
       This is what serves people who follow many active accounts.
    2. Otherwise, and only then (a one-time filter), for each followee at most limit+1 keys
       from ix_videos_user_published, merged: bounded by followees x page size, so cheap for
       people following few accounts, or accounts that rarely publish.

    A plain join would leave the choice to the planner, which walks the whole of
    ix_videos_published for someone following a thousand accounts that never publish.
    """
    followees = select(col(Follow.followee_id)).where(
        col(Follow.follower_id) == viewer_id, _active(col(Follow.followee_id))
    )
    recent = _after(sa.select(col(Video.published_at), col(Video.id), col(Video.user_id)), after)
    window = recent.order_by(*_newest_first()).limit(FOLLOWING_WINDOW).subquery("recent")
    in_window = (
        sa.select(window.c.published_at, window.c.id)
        .where(window.c.user_id.in_(followees))
        .order_by(window.c.published_at.desc(), window.c.id.desc())
        .limit(limit + 1)
        .cte("in_window")
    )
    enough = sa.select(sa.func.count()).select_from(in_window).scalar_subquery() > limit

    latest = _after(
        sa.select(col(Video.published_at), col(Video.id)).where(
            col(Video.user_id) == col(Follow.followee_id)
        ),
        after,
    )
    lateral = latest.order_by(*_newest_first()).limit(limit + 1).lateral("latest")
    per_followee = (
        sa.select(lateral.c.published_at, lateral.c.id)
        .select_from(Follow)
        .join(lateral, sa.true())
        .where(col(Follow.follower_id) == viewer_id, _active(col(Follow.followee_id)), ~enough)
    )
    candidates = sa.union_all(
        sa.select(in_window.c.published_at, in_window.c.id).where(enough), per_followee
    ).subquery("candidates")
    return (
        sa.select(candidates.c.id)
        .order_by(candidates.c.published_at.desc(), candidates.c.id.desc())
        .limit(limit + 1)
        .subquery("page")
    )


async def following_feed(
    session: AsyncSession, viewer_id: uuid.UUID, page: PageRequest
) -> tuple[list[FeedRow], str | None]:
    """Videos of the people the viewer follows, newest first: the page's keys first (see
    _following_keys), then only those limit+1 videos joined to the rest."""
    keys = _following_keys(viewer_id, page.limit, page.after)
    statement = _rows(viewer_id).join(keys, keys.c.id == col(Video.id))
    return await _page(session, statement, page)


async def user_videos(
    session: AsyncSession, viewer_id: uuid.UUID, author_id: uuid.UUID, page: PageRequest
) -> tuple[list[FeedRow], str | None]:
    statement = _rows(viewer_id).where(col(Video.user_id) == author_id)
    return await _page(session, _after(statement, page.after), page)


async def get_row(session: AsyncSession, viewer_id: uuid.UUID, video_id: uuid.UUID) -> FeedRow:
    """One visible video as listings show it; NotFound otherwise."""
    row = (await session.exec(_rows(viewer_id).where(col(Video.id) == video_id))).first()
    if row is None:
        raise NotFound("Video")
    return FeedRow(**row._mapping)


async def get_visible(
    session: AsyncSession, video_id: uuid.UUID, *, key_share: bool = False
) -> Video:
    """The video if visible, NotFound otherwise; with key_share, locked against deletion (FOR
    KEY SHARE) until the transaction ends, as the foreign key check of a like or comment would
    lock it anyway."""
    statement = (
        select(Video)
        .join(User, col(User.id) == col(Video.user_id))
        .where(col(Video.id) == video_id, col(User.is_active).is_(True))
    )
    if key_share:
        statement = statement.with_for_update(key_share=True, of=Video)
    video = (await session.exec(statement)).first()
    if video is None:
        raise NotFound("Video")
    return video


async def publish(session: AsyncSession, user_id: uuid.UUID, body: VideoCreate) -> uuid.UUID:
    """Insert the video and commit; returns its id.

    NotFound if the generation is missing or someone else's; Conflict if it is not SUCCEEDED,
    has no output, or is already published (the unique generation_id settles concurrent
    attempts).
    """
    generation = (
        await session.exec(
            select(Generation).where(
                col(Generation.id) == body.generation_id, col(Generation.user_id) == user_id
            )
        )
    ).first()
    # (Raising ends nothing here: the request's session rolls back when it closes.)
    if generation is None:
        raise NotFound("Generation")
    if generation.status != GenerationStatus.SUCCEEDED:
        raise Conflict(
            f"Generation is {generation.status}: only a SUCCEEDED generation can be published"
        )
    if not generation.object_name:
        raise Conflict("Generation has no video to publish")
    statement = (
        pg_insert(Video)
        .values(
            id=uuid.uuid4(),
            generation_id=generation.id,
            user_id=user_id,
            title=body.title,
            description=body.description,
            # The statement's time, not the transaction's: as close to the commit as it gets.
            published_at=sa.func.clock_timestamp(),
        )
        .on_conflict_do_nothing(constraint="uq_videos_generation_id")
        .returning(col(Video.id))
    )
    inserted = (await session.exec(statement)).first()
    await session.commit()
    if inserted is None:
        raise Conflict("Generation is already published")
    video_id: uuid.UUID = inserted[0]
    return video_id


async def unpublish(session: AsyncSession, video_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """The owner's video goes, with its likes and comments (cascade); commits. NotFound if it
    is not visible, Forbidden if it is someone else's."""
    video = await get_visible(session, video_id)
    if video.user_id != user_id:
        raise Forbidden("Only the owner can unpublish")
    await session.exec(sa.delete(Video).where(col(Video.id) == video_id))
    await session.commit()


async def counts(session: AsyncSession, user_id: uuid.UUID) -> ProfileCounts:
    """Followers, followees and videos: three index-only counts in one round trip."""

    def count(table: Any, where: Any) -> Any:
        return select(sa.func.count()).select_from(table).where(where).scalar_subquery()

    row = (
        await session.exec(
            select(
                count(Follow, col(Follow.followee_id) == user_id),
                count(Follow, col(Follow.follower_id) == user_id),
                count(Video, col(Video.user_id) == user_id),
            )
        )
    ).one()
    return ProfileCounts(follower_count=row[0], following_count=row[1], video_count=row[2])
