"""What clients see of a job: its public model and its SSE payload, with fresh signed URLs."""

from __future__ import annotations

import asyncio
from typing import Any

from genvid_api.config import Settings
from genvid_api.models import GenerationPublic, JobStatus, VideoGenerationJob
from genvid_api.signing import SignedUrl, UrlSigner


async def _sign_pair(
    signer: UrlSigner, bucket: str, video: str | None, poster: str | None
) -> tuple[SignedUrl | None, SignedUrl | None]:
    async def one(name: str | None) -> SignedUrl | None:
        return None if not name else await signer.sign(bucket, name)

    video_url, poster_url = await asyncio.gather(one(video), one(poster))
    return video_url, poster_url


async def present_job(
    job: VideoGenerationJob, signer: UrlSigner, settings: Settings
) -> GenerationPublic:
    """The public view; a SUCCEEDED job gets URLs signed now, valid for a short while."""
    if job.status != JobStatus.SUCCEEDED or not job.object_name:
        return GenerationPublic.from_job(job)
    video, poster = await _sign_pair(
        signer, job.bucket or settings.bucket, job.object_name, job.poster_object
    )
    return GenerationPublic.from_job(
        job,
        video_url=video.url if video else None,
        poster_url=poster.url if poster else None,
        urls_expire_at=video.expires_at if video else None,
    )


async def present_many(
    rows: list[VideoGenerationJob], signer: UrlSigner, settings: Settings
) -> list[GenerationPublic]:
    return list(await asyncio.gather(*(present_job(job, signer, settings) for job in rows)))


EVENT_FIELDS = ("id", "status", "seq", "reason", "message", "attempts", "updated_at", "cost_usd")


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
