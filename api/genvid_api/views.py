"""What clients see of a generation (its public model, its SSE payload) and of published
videos: never storage coordinates, always URLs signed for this response (one signer call each).
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
    "queue_position",
)  # fmt: skip


async def event_payload(ctx: AppContext, body: dict[str, Any]) -> dict[str, Any]:
    """An operator message as clients get it: no storage coordinates, signed URLs instead."""
    payload = {key: body.get(key) for key in EVENT_FIELDS}
    objects = _generation_objects(
        body.get("status"), body.get("bucket"), body.get("object_name"), body.get("poster_object")
    )
    if objects.video:
        [urls] = await _sign(ctx, [objects])
        payload["video_url"] = urls.video_url
        payload["poster_url"] = urls.poster_url
        payload["urls_expire_at"] = urls.urls_expire_at.isoformat() if urls.urls_expire_at else None
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
