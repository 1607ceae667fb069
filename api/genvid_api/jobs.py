"""Queries on video_generation_jobs (the table shared with the operator).

The api inserts rows and owns `resource_created`, `cancel_requested` and `cancel_delivered_at`;
it changes `status` only for a job whose custom resource can never exist (the apiserver
rejected its spec), bumping `event_seq` as the operator would. Everything else is the
operator's: a cancel, even before the resource exists, goes through the resource.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api import cursors
from genvid_api.models import PENDING_CANCEL, GenerationCreate, JobStatus, VideoGenerationJob

Job = VideoGenerationJob


class IdempotencyMismatch(Exception):
    """The Idempotency-Key was used before by this user for a different request."""


@dataclass(frozen=True)
class Request:
    """A validated POST /generate, with the model resolved."""

    prompt: str
    model: str
    duration_seconds: int
    aspect_ratio: str
    negative_prompt: str | None
    seed: int | None

    @classmethod
    def from_body(cls, body: GenerationCreate, model: str) -> Request:
        return cls(
            prompt=body.prompt,
            model=model,
            duration_seconds=body.duration_seconds,
            aspect_ratio=body.aspect_ratio,
            negative_prompt=body.negative_prompt,
            seed=body.seed,
        )

    def matches(self, job: Job) -> bool:
        return (
            self.prompt,
            self.model,
            self.duration_seconds,
            self.aspect_ratio,
            self.negative_prompt,
            self.seed,
        ) == (
            job.prompt,
            job.model,
            job.duration_seconds,
            job.aspect_ratio,
            job.negative_prompt,
            job.seed,
        )


async def insert(
    session: AsyncSession,
    user_id: uuid.UUID,
    request: Request,
    idempotency_key: str | None,
    on_insert: Callable[[Job], Awaitable[None]] | None = None,
) -> tuple[Job, bool]:
    """Insert a QUEUED job and commit; with a key already used, return that job instead.

    `on_insert` runs in the inserting transaction, for a new row only (a replay reserves
    nothing twice); if it raises, the insert is rolled back. Returns (job, created).
    Concurrent requests with one key race on the unique constraint, so exactly one row is
    ever inserted. The session's transaction is over on return (its connection back in the
    pool): the caller's next step (creating the resource) takes one.
    """
    values = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "prompt": request.prompt,
        "model": request.model,
        "duration_seconds": request.duration_seconds,
        "aspect_ratio": request.aspect_ratio,
        "negative_prompt": request.negative_prompt,
        "seed": request.seed,
        "idempotency_key": idempotency_key,
        "status": JobStatus.QUEUED.value,
    }
    statement = pg_insert(Job).values(**values)
    if idempotency_key is not None:
        statement = statement.on_conflict_do_nothing(
            constraint="uq_video_generation_jobs_user_idempotency_key"
        )
    # RETURNING the whole row: no second read after the commit.
    result = await session.exec(statement.returning(Job))
    inserted: Job | None = result.scalars().one_or_none()
    if inserted is not None:
        if on_insert is not None:
            try:
                await on_insert(inserted)
            except BaseException:
                await session.rollback()
                raise
        await session.commit()
        return inserted, True
    existing = (
        await session.exec(
            select(Job).where(Job.user_id == user_id, Job.idempotency_key == idempotency_key)
        )
    ).one()
    await session.commit()
    if not request.matches(existing):
        raise IdempotencyMismatch
    return existing, False


async def get_owned(session: AsyncSession, user_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
    return (await session.exec(select(Job).where(Job.id == job_id, Job.user_id == user_id))).first()


async def lock(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    skip_locked: bool = False,
) -> Job | None:
    """SELECT ... FOR UPDATE (fresh from the database) inside the session's transaction.

    With skip_locked, a row another transaction holds reads as missing.
    """
    statement = select(Job).where(Job.id == job_id).with_for_update(skip_locked=skip_locked)
    if user_id is not None:
        statement = statement.where(Job.user_id == user_id)
    return (await session.exec(statement.execution_options(populate_existing=True))).first()


async def list_owned(
    session: AsyncSession,
    user_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> tuple[list[Job], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    statement = select(Job).where(Job.user_id == user_id)
    if after is not None:
        created_at, job_id = after
        statement = statement.where(
            sa.tuple_(col(Job.created_at), col(Job.id)) < sa.tuple_(created_at, job_id)
        )
    statement = statement.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit + 1)
    rows = list((await session.exec(statement)).all())
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = cursors.encode(last.created_at, last.id) if last is not None else None
    return rows[:limit], next_cursor


def finish_before_creation(job: Job, status: JobStatus, reason: str, message: str) -> None:
    """A terminal transition by the api, for a job whose resource can never exist (the
    apiserver rejected its spec): the operator will never publish anything for it."""
    job.status = status.value
    job.reason = reason
    job.message = message
    job.event_seq += 1
    job.updated_at = job.finished_at = datetime.now(UTC)


def request_cancel(job: Job) -> None:
    """Record the owner's cancel: `updated_at` moves, so the outbox's re-send waits its grace
    period while the request delivers it."""
    job.cancel_requested = True
    job.updated_at = datetime.now(UTC)


async def mark_cancel_delivered(session: AsyncSession, job_id: uuid.UUID) -> None:
    """The resource has spec.cancel=true (or is gone): the outbox stops re-sending it."""
    await session.exec(
        sa.update(Job)
        .where(col(Job.id) == job_id, col(Job.cancel_delivered_at).is_(None))
        .values(cancel_delivered_at=sa.func.now())
    )


async def pending_resource_ids(
    session: AsyncSession, grace_seconds: float, limit: int
) -> list[uuid.UUID]:
    """Unfinished jobs older than the grace period whose resource is not known to exist
    (canceled ones too: they are created with spec.cancel=true). Mostly QUEUED; a RUNNING one
    has a resource that a create with a lost answer stored, and gets flagged (409)."""
    cutoff = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, grace_seconds)
    statement = (
        select(Job.id)
        .where(
            # `= false`, as the partial index's predicate says (`IS FALSE` would not use it).
            col(Job.resource_created) == sa.false(),
            col(Job.status).in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
            col(Job.created_at) < cutoff,
        )
        .order_by(col(Job.created_at))
        .limit(limit)
    )
    return list((await session.exec(statement)).all())


async def pending_cancel_ids(
    session: AsyncSession, grace_seconds: float, limit: int
) -> list[uuid.UUID]:
    """Unfinished jobs with a created resource whose cancel was requested more than the grace
    period ago and is not known to be on the resource (ix_video_generation_jobs_pending_cancel).
    """
    cutoff = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, grace_seconds)
    statement = (
        select(Job.id)
        .where(
            sa.text(PENDING_CANCEL),
            col(Job.resource_created).is_(True),
            col(Job.updated_at) < cutoff,
        )
        .order_by(col(Job.updated_at))
        .limit(limit)
    )
    return list((await session.exec(statement)).all())
