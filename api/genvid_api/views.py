"""What clients see of a job (its public model, its SSE payload) and of published videos, with
fresh signed URLs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from genvid_api.config import Settings
from genvid_api.models import (
    Author,
    GenerationPublic,
    JobStatus,
    VideoGenerationJob,
    VideoPublic,
)
from genvid_api.signing import SignedUrl, UrlSigner
from genvid_api.videos import FeedRow


async def _sign_pair(
    signer: UrlSigner, bucket: str, video: str | None, poster: str | None
) -> tuple[SignedUrl | None, SignedUrl | None]:
    """Both URLs in one signer call (one worker-thread hop locally)."""
    names = [name for name in (video, poster) if name]
    signed = iter(await signer.sign_many([(bucket, name) for name in names]))
    return (next(signed) if video else None), (next(signed) if poster else None)


async def present_job(
    job: VideoGenerationJob, signer: UrlSigner, settings: Settings
) -> GenerationPublic:
    """The public view; a SUCCEEDED job gets URLs signed now, valid for a short while."""
    return (await present_many([job], signer, settings))[0]


async def present_many(
    rows: Sequence[VideoGenerationJob], signer: UrlSigner, settings: Settings
) -> list[GenerationPublic]:
    """Public views of jobs, their URLs signed in one signer call."""
    wanted: list[tuple[str, str]] = []
    for job in rows:
        if job.status == JobStatus.SUCCEEDED and job.object_name:
            bucket = job.bucket or settings.bucket
            wanted.extend((bucket, name) for name in (job.object_name, job.poster_object) if name)
    signed = iter(await signer.sign_many(wanted))
    items = []
    for job in rows:
        if job.status != JobStatus.SUCCEEDED or not job.object_name:
            items.append(GenerationPublic.from_job(job))
            continue
        video = next(signed)
        poster = next(signed) if job.poster_object else None
        items.append(
            GenerationPublic.from_job(
                job,
                video_url=video.url,
                poster_url=poster.url if poster else None,
                urls_expire_at=video.expires_at,
            )
        )
    return items


EVENT_FIELDS = (
    "id", "status", "seq", "reason", "message", "attempts", "updated_at", "cost_usd",
    "queue_position",
)  # fmt: skip


async def event_payload(
    body: dict[str, Any], signer: UrlSigner, settings: Settings
) -> dict[str, Any]:
    """An operator message as clients get it: no storage coordinates, signed URLs instead."""
    payload = {key: body.get(key) for key in EVENT_FIELDS}
    if body.get("status") == JobStatus.SUCCEEDED and body.get("object_name"):
        video, poster = await _sign_pair(
            signer,
            str(body.get("bucket") or settings.bucket),
            str(body["object_name"]),
            str(body["poster_object"]) if body.get("poster_object") else None,
        )
        payload["video_url"] = video.url if video else None
        payload["poster_url"] = poster.url if poster else None
        payload["urls_expire_at"] = video.expires_at.isoformat() if video else None
    return payload


async def present_videos(
    rows: Sequence[FeedRow], viewer_id: uuid.UUID, signer: UrlSigner, settings: Settings
) -> list[VideoPublic]:
    """Listing items with URLs signed now: one signer call for the whole page."""
    wanted: list[tuple[str, str]] = []
    for row in rows:
        bucket = row.bucket or settings.bucket
        wanted.extend((bucket, name) for name in (row.object_name, row.poster_object) if name)
    signed = iter(await signer.sign_many(wanted))
    items = []
    for row in rows:
        video = next(signed) if row.object_name else None
        poster = next(signed) if row.poster_object else None
        expires = video or poster
        items.append(
            VideoPublic(
                id=row.id,
                author=Author(id=row.user_id, username=row.username),
                title=row.title,
                description=row.description,
                published_at=row.published_at,
                like_count=row.like_count,
                comment_count=row.comment_count,
                liked_by_me=row.liked_by_me,
                aspect_ratio=row.aspect_ratio,
                duration_seconds=row.duration_seconds,
                generation_id=row.generation_id if row.user_id == viewer_id else None,
                video_url=video.url if video else None,
                poster_url=poster.url if poster else None,
                urls_expire_at=expires.expires_at if expires else None,
            )
        )
    return items
