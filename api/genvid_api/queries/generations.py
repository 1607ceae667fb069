"""Queries on generations (`video_generation_jobs`, the table shared with the operator).

The api inserts rows and owns `resource_created`, `cancel_requested` and `cancel_delivered_at`;
it changes `status` only for a generation whose custom resource can never exist (the apiserver
rejected its spec), bumping `event_seq` as the operator would. Everything else is the
operator's: a cancel, even before the resource exists, goes through the resource.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.errors import Invalid
from genvid_api.models import PENDING_CANCEL, Generation, GenerationCreate
from genvid_api.pagination import PageRequest
from genvid_contracts.status import GenerationStatus


async def insert(
    session: AsyncSession,
    user_id: uuid.UUID,
    request: GenerationCreate,
    idempotency_key: str | None,
    on_insert: Callable[[Generation], Awaitable[None]] | None = None,
) -> Generation:
    """Insert a QUEUED generation (`request.model` resolved) and commit; with a key already
    used, return that one instead.

    `on_insert` runs in the inserting transaction, for a new row only (a replay reserves
    nothing twice); if it raises, the insert is rolled back.
    Concurrent requests with one key race on the unique constraint, so exactly one row is ever
    inserted; the key with a different request is Invalid. The session's transaction is over on
    return (its connection back in the pool): the caller's next step (creating the resource)
    takes one.
    """
    statement = pg_insert(Generation).values(
        id=uuid.uuid4(),
        user_id=user_id,
        idempotency_key=idempotency_key,
        status=GenerationStatus.QUEUED.value,
        deadline_at=_deadline(request.deadline_seconds),
        **request.columns(),
    )
    if idempotency_key is not None:
        statement = statement.on_conflict_do_nothing(
            constraint="uq_video_generation_jobs_user_idempotency_key"
        )
    # RETURNING the whole row: no second read after the commit.
    result = await session.exec(statement.returning(Generation))
    inserted: Generation | None = result.scalars().one_or_none()
    if inserted is not None:
        if on_insert is not None:
            try:
                await on_insert(inserted)
            except BaseException:
                await session.rollback()
                raise
        await session.commit()
        return inserted
    existing = (
        await session.exec(
            select(Generation).where(
                Generation.user_id == user_id, Generation.idempotency_key == idempotency_key
            )
        )
    ).one()
    await session.commit()
    if any(getattr(existing, name) != value for name, value in request.columns().items()) or (
        stored_deadline(existing.created_at, request.deadline_seconds) != existing.deadline_at
    ):
        raise Invalid("Idempotency-Key was already used with a different request")
    return existing


def _deadline(seconds: int | None) -> Any:
    """The deadline in whole seconds from the inserting transaction's `now()`, the row's
    `created_at`: the resource's spec.deadline says the same time to the second."""
    if seconds is None:
        return None
    return sa.func.date_trunc(
        "second", sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)
    )


def stored_deadline(created_at: datetime, seconds: int | None) -> datetime | None:
    """What `_deadline` stored for a row created at `created_at`: a replay's request asks for
    the same deadline only if this is its row's."""
    if seconds is None:
        return None
    return (created_at + timedelta(seconds=seconds)).replace(microsecond=0)


async def get_owned(
    session: AsyncSession, user_id: uuid.UUID, generation_id: uuid.UUID
) -> Generation | None:
    statement = select(Generation).where(
        Generation.id == generation_id, Generation.user_id == user_id
    )
    return (await session.exec(statement)).first()


async def lock(
    session: AsyncSession, generation_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> Generation | None:
    """SELECT ... FOR UPDATE (fresh from the database) inside the session's transaction."""
    return await _fresh(session, generation_id, user_id, for_update=True)


async def read(session: AsyncSession, generation_id: uuid.UUID) -> Generation | None:
    """The row fresh from the database (not the session's cached copy), unlocked."""
    return await _fresh(session, generation_id, None, for_update=False)


async def _fresh(
    session: AsyncSession, generation_id: uuid.UUID, user_id: uuid.UUID | None, *, for_update: bool
) -> Generation | None:
    statement = select(Generation).where(Generation.id == generation_id)
    if user_id is not None:
        statement = statement.where(Generation.user_id == user_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.exec(statement.execution_options(populate_existing=True))).first()


async def list_owned(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[list[Generation], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    statement = select(Generation).where(Generation.user_id == user_id)
    if page.after is not None:
        statement = statement.where(
            sa.tuple_(col(Generation.created_at), col(Generation.id)) < sa.tuple_(*page.after)
        )
    statement = statement.order_by(
        col(Generation.created_at).desc(), col(Generation.id).desc()
    ).limit(page.fetch)
    rows = list((await session.exec(statement)).all())
    return page.cut(rows, lambda row: (row.created_at, row.id))


def finish_before_creation(
    generation: Generation, status: GenerationStatus, reason: str, message: str
) -> None:
    """A terminal transition by the api, for a generation whose resource can never exist (the
    apiserver rejected its spec): the operator will never publish anything for it."""
    generation.status = status.value
    generation.reason = reason
    generation.message = message
    generation.event_seq += 1
    generation.updated_at = generation.finished_at = datetime.now(UTC)


def request_cancel(generation: Generation) -> None:
    """Record the owner's cancel: `updated_at` moves, so the outbox's re-send waits its grace
    period while the request delivers it."""
    generation.cancel_requested = True
    generation.updated_at = datetime.now(UTC)


async def mark_cancel_delivered(session: AsyncSession, generation_id: uuid.UUID) -> None:
    """The resource has spec.cancel=true (or is gone): the outbox stops re-sending it."""
    await session.exec(
        sa.update(Generation)
        .where(col(Generation.id) == generation_id, col(Generation.cancel_delivered_at).is_(None))
        .values(cancel_delivered_at=sa.func.now())
    )


def _older_than(column: Any, grace_seconds: float) -> Any:
    return column < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, grace_seconds)


async def pending_resource_ids(
    session: AsyncSession, grace_seconds: float, limit: int
) -> list[uuid.UUID]:
    """Unfinished generations older than the grace period whose resource is not known to exist
    (canceled ones too: they are created with spec.cancel=true). Mostly QUEUED; a RUNNING one
    has a resource that a create with a lost answer stored, and gets flagged (409)."""
    statement = (
        select(Generation.id)
        .where(
            # `= false`, as the partial index's predicate says (`IS FALSE` would not use it).
            col(Generation.resource_created) == sa.false(),
            col(Generation.status).in_(
                [GenerationStatus.QUEUED.value, GenerationStatus.RUNNING.value]
            ),
            _older_than(col(Generation.created_at), grace_seconds),
        )
        .order_by(col(Generation.created_at))
        .limit(limit)
    )
    return list((await session.exec(statement)).all())


async def pending_cancel_ids(
    session: AsyncSession, grace_seconds: float, limit: int
) -> list[uuid.UUID]:
    """Unfinished generations with a created resource whose cancel was requested more than the
    grace period ago and is not known to be on the resource
    (ix_video_generation_jobs_pending_cancel)."""
    statement = (
        select(Generation.id)
        .where(
            sa.text(PENDING_CANCEL),
            col(Generation.resource_created).is_(True),
            _older_than(col(Generation.updated_at), grace_seconds),
        )
        .order_by(col(Generation.updated_at))
        .limit(limit)
    )
    return list((await session.exec(statement)).all())
