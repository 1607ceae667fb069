"""What clients see of a generation (its public model, its SSE payload) and of published
videos: never storage coordinates, always URLs signed for this response (one signer call each).

Only objects named by the caller's own database row are signed, or objects under the
`previews/<generation id>/` prefix of the caller's own generation: an event's storage names come
from NATS, where anyone who may publish could name another user's private preview.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.context import AppContext
from genvid_api.models import Generation, GenerationPublic, Page, VideoBase, VideoPublic
from genvid_api.queries import generations
from genvid_api.queries.videos import FeedRow
from genvid_contracts.status import GenerationStatus


@dataclass(frozen=True)
class _Objects:
    """What to sign for one item: the preview and its poster, when it has them."""

    bucket: str | None
    video: str | None = None
    poster: str | None = None


@dataclass(frozen=True)
class _Urls:
    video_url: str | None = None
    poster_url: str | None = None
    urls_expire_at: datetime | None = None


async def _sign(ctx: AppContext, items: Sequence[_Objects]) -> list[_Urls]:
    """The URLs of every item, signed in one signer call (one worker-thread hop locally)."""
    wanted = [
        (item.bucket or ctx.settings.bucket, name)
        for item in items
        for name in (item.video, item.poster)
        if name
    ]
    signed = iter(await ctx.signer.sign_many(wanted))
    urls = []
    for item in items:
        video = next(signed) if item.video else None
        poster = next(signed) if item.poster else None
        expires = video or poster
        urls.append(
            _Urls(
                video_url=video.url if video else None,
                poster_url=poster.url if poster else None,
                urls_expire_at=expires.expires_at if expires else None,
            )
        )
    return urls


def _generation_objects(status: object, bucket: Any, video: Any, poster: Any) -> _Objects:
    """Only a SUCCEEDED generation with a preview has anything to show."""
    if status != GenerationStatus.SUCCEEDED or not video:
        return _Objects(bucket=None)
    return _Objects(bucket=bucket, video=str(video), poster=str(poster) if poster else None)


async def present_generations(
    ctx: AppContext, rows: Sequence[Generation]
) -> list[GenerationPublic]:
    """Public views of generations; SUCCEEDED ones get URLs signed now, valid for a while."""
    objects = [
        _generation_objects(row.status, row.bucket, row.object_name, row.poster_object)
        for row in rows
    ]
    urls = await _sign(ctx, objects)
    return [
        GenerationPublic.from_row(
            row,
            video_url=url.video_url,
            poster_url=url.poster_url,
            urls_expire_at=url.urls_expire_at,
        )
        for row, url in zip(rows, urls, strict=True)
    ]


async def present_generation(ctx: AppContext, row: Generation) -> GenerationPublic:
    [generation] = await present_generations(ctx, [row])
    return generation


EVENT_FIELDS = (
    "id", "status", "seq", "reason", "message", "attempts", "updated_at", "cost_usd",
    "queue_position", "deadline_at",
)  # fmt: skip


def _is_under(name: str, prefix: str) -> bool:
    """`name` is an object below `prefix`, with no `.` or `..` segment a client would resolve."""
    segments = name.removeprefix(prefix).split("/")
    return name.startswith(prefix) and all(part not in ("", ".", "..") for part in segments)


def _trusted_objects(row: Generation | None, bucket: str, claimed: _Objects) -> _Objects:
    """What of an event's claimed objects may be signed: only what `row` (the caller's own
    generation, None if it is not theirs) names or holds below its preview prefix, in its
    bucket. Anything else is dropped, never signed."""
    if row is None or claimed.video is None:
        return _Objects(bucket=None)
    own_bucket = row.bucket or bucket
    if (claimed.bucket or own_bucket) != own_bucket:
        return _Objects(bucket=None)
    prefix = f"previews/{row.id}/"

    def own(name: str | None, recorded: str | None) -> str | None:
        if name is None or (name != recorded and not _is_under(name, prefix)):
            return None
        return name

    video = own(claimed.video, row.object_name)
    if video is None:
        return _Objects(bucket=None)
    return _Objects(bucket=own_bucket, video=video, poster=own(claimed.poster, row.poster_object))


async def _own_generation(
    ctx: AppContext, user_id: uuid.UUID, generation_id: object
) -> Generation | None:
    try:
        wanted = uuid.UUID(str(generation_id))
    except ValueError:
        return None
    # A short session of its own: a stream must not hold a database connection.
    async with ctx.sessions() as session:
        return await generations.get_owned(session, user_id, wanted)


async def event_payload(
    ctx: AppContext, user_id: uuid.UUID, body: dict[str, Any]
) -> dict[str, Any]:
    """An operator message as `user_id` gets it: no storage coordinates, and signed URLs only
    for the objects of the user's own generation (see `_trusted_objects`)."""
    payload = {key: body.get(key) for key in EVENT_FIELDS}
    claimed = _generation_objects(
        body.get("status"), body.get("bucket"), body.get("object_name"), body.get("poster_object")
    )
    if claimed.video:
        row = await _own_generation(ctx, user_id, body.get("id"))
        objects = _trusted_objects(row, ctx.settings.bucket, claimed)
        if objects.video:
            [urls] = await _sign(ctx, [objects])
            payload["video_url"] = urls.video_url
            payload["poster_url"] = urls.poster_url
            payload["urls_expire_at"] = (
                urls.urls_expire_at.isoformat() if urls.urls_expire_at else None
            )
    return payload


async def present_videos(
    ctx: AppContext, rows: Sequence[FeedRow], viewer_id: uuid.UUID
) -> list[VideoPublic]:
    """Listing items with URLs signed now: one signer call for the whole page."""
    objects = [_Objects(row.bucket, row.object_name, row.poster_object) for row in rows]
    urls = await _sign(ctx, objects)
    return [
        VideoPublic(
            **{name: getattr(row, name) for name in VideoBase.model_fields},
            generation_id=row.generation_id if row.author.id == viewer_id else None,
            video_url=url.video_url,
            poster_url=url.poster_url,
            urls_expire_at=url.urls_expire_at,
        )
        for row, url in zip(rows, urls, strict=True)
    ]


async def video_page(
    ctx: AppContext,
    session: AsyncSession,
    viewer_id: uuid.UUID,
    found: tuple[list[FeedRow], str | None],
) -> Page[VideoPublic]:
    """A listing query's rows as a page; the session's connection goes back to the pool
    before the (slower) signing."""
    rows, next_cursor = found
    await session.commit()
    items = await present_videos(ctx, rows, viewer_id)
    return Page[VideoPublic](items=items, next_cursor=next_cursor)
