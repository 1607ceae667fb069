"""Queries on `webhook_endpoints` and `webhook_deliveries` (the webhooks' outbox).

Endpoints are their owner's alone: every query takes the user, and another user's endpoint is
NotFound. At most `cap` endpoints per user, counted under a per-user advisory lock so that
concurrent requests cannot pass it.

The outbox: the intake writes one row per endpoint of the generation's owner and message
(`enqueue`, idempotent on (endpoint, message id)); the delivery loops of every process claim
due rows (`claim`: FOR UPDATE SKIP LOCKED, so each row goes to one of them) by leasing them, and
record each attempt's outcome. A leased row whose process died is due again when its lease ends:
delivery is at least once. A message waits while an earlier one of the same generation is
still pending for the endpoint, so an endpoint sees a generation's transitions in order.

A rotation keeps the secret it replaces as the previous one, which signs too until its grace
period ends (`claim` returns it only until then): two secrets at most, and a second rotation
drops the oldest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.errors import Conflict, NotFound
from genvid_api.models import (
    PENDING_DELIVERY,
    WebhookDelivery,
    WebhookDeliveryPublic,
    WebhookEndpoint,
    WebhookPublic,
)
from genvid_api.pagination import PageRequest

# Serializes one user's endpoint creations across processes (pg_advisory_xact_lock's first key).
_LOCK_SPACE = 7395003

_LOCK = sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:user_id))")

_ENQUEUE = sa.text(
    """
    INSERT INTO webhook_deliveries
        (id, endpoint_id, message_id, event_type, generation_id, event_seq, payload)
    SELECT gen_random_uuid(), e.id, :message_id, :event_type, g.id, :event_seq, :payload
    FROM webhook_endpoints AS e
    JOIN video_generation_jobs AS g ON g.id = :generation_id AND g.user_id = e.user_id
    WHERE e.user_id = :user_id AND e.disabled_at IS NULL
    ON CONFLICT (endpoint_id, message_id) DO NOTHING
    """
)

_CLAIM = sa.text(
    f"""
    WITH due AS (
        SELECT d.id FROM webhook_deliveries AS d
        WHERE d.{PENDING_DELIVERY} AND d.next_attempt_at <= now()
            AND NOT EXISTS (
                SELECT 1 FROM webhook_deliveries AS earlier
                WHERE earlier.endpoint_id = d.endpoint_id
                    AND earlier.generation_id = d.generation_id
                    AND earlier.{PENDING_DELIVERY} AND earlier.event_seq < d.event_seq
            )
        ORDER BY d.next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE webhook_deliveries AS d
    SET attempts = d.attempts + 1,
        last_attempt_at = now(),
        next_attempt_at = now() + make_interval(secs => :lease)
    FROM due, webhook_endpoints AS e
    WHERE d.id = due.id AND e.id = d.endpoint_id AND e.disabled_at IS NULL
    RETURNING d.id, d.endpoint_id, d.message_id, d.payload, d.attempts, e.url, e.secret,
        CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END
    """
)

_DELIVERED = sa.text(
    f"""
    UPDATE webhook_deliveries
    SET status = 'delivered', finished_at = now(), last_status_code = :code, last_error = NULL
    WHERE id = :id AND {PENDING_DELIVERY}
    """
)

_RETRY = sa.text(
    f"""
    UPDATE webhook_deliveries
    SET next_attempt_at = now() + make_interval(secs => :delay),
        last_status_code = :code, last_error = :error
    WHERE id = :id AND {PENDING_DELIVERY}
    """
)

_FAILED = sa.text(
    f"""
    UPDATE webhook_deliveries
    SET status = 'failed', finished_at = now(), last_status_code = :code, last_error = :error
    WHERE id = :id AND {PENDING_DELIVERY}
    """
)

_DISABLE = sa.text(
    "UPDATE webhook_endpoints SET disabled_at = now() WHERE id = :id AND disabled_at IS NULL"
)

_FAIL_ENDPOINT = sa.text(
    f"""
    UPDATE webhook_deliveries
    SET status = 'failed', finished_at = now(), last_error = :error
    WHERE endpoint_id = :id AND {PENDING_DELIVERY} AND id <> :delivery_id
    """
)

_RELEASE = sa.text(
    f"""
    UPDATE webhook_deliveries SET next_attempt_at = now(), attempts = attempts - 1
    WHERE id = ANY(CAST(:ids AS uuid[])) AND {PENDING_DELIVERY}
    """
)

_PENDING = sa.text(f"SELECT count(*) FROM webhook_deliveries WHERE {PENDING_DELIVERY}")

_PRUNE = sa.text(
    f"""
    DELETE FROM webhook_deliveries
    WHERE NOT {PENDING_DELIVERY} AND finished_at < now() - make_interval(days => :days)
    """
)

# Previous secrets whose grace period is over: they sign nothing more, so they are not kept.
_FORGET_PREVIOUS = sa.text(
    """
    UPDATE webhook_endpoints SET previous_secret = NULL
    WHERE previous_secret IS NOT NULL AND previous_secret_expires_at <= now()
    """
)

# Messages an enqueue racing a 410 wrote for the endpoint it disabled: never claimed, failed here.
_FAIL_DISABLED = sa.text(
    f"""
    UPDATE webhook_deliveries AS d
    SET status = 'failed', finished_at = now(), last_error = 'endpoint disabled (410 Gone)'
    FROM webhook_endpoints AS e
    WHERE e.id = d.endpoint_id AND e.disabled_at IS NOT NULL AND d.{PENDING_DELIVERY}
    """
)


def _public(endpoint: WebhookEndpoint) -> WebhookPublic:
    return WebhookPublic.model_validate(endpoint, from_attributes=True)


async def create(
    session: AsyncSession, user_id: uuid.UUID, url: str, description: str, secret: str, cap: int
) -> WebhookEndpoint:
    """Insert and commit; Conflict if the user has `cap` endpoints already."""
    connection = await session.connection()
    await connection.execute(_LOCK, {"space": _LOCK_SPACE, "user_id": str(user_id)})
    count = await session.scalar(
        sa.select(sa.func.count())
        .select_from(WebhookEndpoint)
        .where(col(WebhookEndpoint.user_id) == user_id, col(WebhookEndpoint.disabled_at).is_(None))
    )
    if (count or 0) >= cap:
        await session.rollback()
        raise Conflict(f"At most {cap} webhook endpoints per user: delete one first")
    endpoint = WebhookEndpoint(user_id=user_id, url=url, description=description, secret=secret)
    session.add(endpoint)
    await session.commit()
    await session.refresh(endpoint)
    return endpoint


async def list_for_user(
    session: AsyncSession, user_id: uuid.UUID, page: PageRequest
) -> tuple[list[WebhookPublic], str | None]:
    """Oldest first, keyset on (created_at, id)."""
    statement = select(WebhookEndpoint).where(col(WebhookEndpoint.user_id) == user_id)
    if page.after is not None:
        statement = statement.where(
            sa.tuple_(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
            > sa.tuple_(*page.after)
        )
    statement = statement.order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))
    rows = [_public(row) for row in await session.exec(statement.limit(page.fetch))]
    return page.cut(rows, lambda endpoint: (endpoint.created_at, endpoint.id))


async def get_owned(
    session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.user_id != user_id:
        raise NotFound("Webhook endpoint")
    return endpoint


async def rotate(
    session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID, secret: str, grace: int
) -> WebhookEndpoint:
    """Make `secret` the endpoint's, the current one its previous (signing `grace` seconds
    more; none if 0), and commit; NotFound if not the user's."""
    now = sa.func.now()
    rotated = await session.exec(
        sa.update(WebhookEndpoint)
        .where(col(WebhookEndpoint.id) == endpoint_id, col(WebhookEndpoint.user_id) == user_id)
        .values(
            secret=secret,
            previous_secret=col(WebhookEndpoint.secret) if grace > 0 else None,
            previous_secret_expires_at=now + timedelta(seconds=grace) if grace > 0 else None,
            secret_rotated_at=now,
        )
        .returning(WebhookEndpoint)
    )
    endpoint: WebhookEndpoint | None = rotated.scalars().first()
    if endpoint is None:
        raise NotFound("Webhook endpoint")
    await session.commit()
    return endpoint


async def delete(session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    """Delete the endpoint and its deliveries, pending ones included; NotFound if not the
    user's. Commits."""
    deleted = await session.exec(
        sa.delete(WebhookEndpoint)
        .where(col(WebhookEndpoint.id) == endpoint_id, col(WebhookEndpoint.user_id) == user_id)
        .returning(col(WebhookEndpoint.id))
    )
    if deleted.first() is None:
        raise NotFound("Webhook endpoint")
    await session.commit()


def _delivery_public(row: WebhookDelivery) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic(
        message_id=row.message_id,
        event_type=row.event_type,
        generation_id=row.generation_id,
        status=row.status,  # type: ignore[arg-type]  # the table's check constraint
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        created_at=row.created_at,
    )


async def deliveries(
    session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID, page: PageRequest
) -> tuple[list[WebhookDeliveryPublic], str | None]:
    """The endpoint's messages, newest first; NotFound if not the user's endpoint."""
    await get_owned(session, user_id, endpoint_id)
    statement = select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint_id)
    if page.after is not None:
        statement = statement.where(
            sa.tuple_(col(WebhookDelivery.created_at), col(WebhookDelivery.id))
            < sa.tuple_(*page.after)
        )
    statement = statement.order_by(
        col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc()
    ).limit(page.fetch)
    rows = list(await session.exec(statement))
    found, cursor = page.cut(rows, lambda row: (row.created_at, row.id))
    return [_delivery_public(row) for row in found], cursor


# -- the outbox ----------------------------------------------------------------------------


async def enqueue(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    generation_id: uuid.UUID,
    event_seq: int,
    message_id: str,
    event_type: str,
    payload: str,
) -> int:
    """A message for each active endpoint of the generation's owner (none if `user_id` does
    not own the generation); how many rows were new. Commits."""
    result = await (await session.connection()).execute(
        _ENQUEUE,
        {
            "user_id": user_id,
            "generation_id": generation_id,
            "event_seq": event_seq,
            "message_id": message_id,
            "event_type": event_type,
            "payload": payload,
        },
    )
    await session.commit()
    return int(result.rowcount)


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this process for one attempt."""

    id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    payload: str
    attempts: int
    url: str
    secret: str
    previous_secret: str | None  # during a rotation's grace period: it signs too

    def __repr__(self) -> str:  # never the secret, whatever logs the object
        return f"Claimed(id={self.id}, endpoint_id={self.endpoint_id}, attempt={self.attempts})"


async def claim(session: AsyncSession, limit: int, lease: float) -> list[Claimed]:
    """Up to `limit` due deliveries, leased for `lease` seconds (the attempt's count and time
    recorded). Commits."""
    result = await (await session.connection()).execute(_CLAIM, {"limit": limit, "lease": lease})
    claimed = [Claimed(*row) for row in result]
    await session.commit()
    return claimed


async def delivered(session: AsyncSession, delivery_id: uuid.UUID, code: int) -> None:
    await (await session.connection()).execute(_DELIVERED, {"id": delivery_id, "code": code})
    await session.commit()


async def retry(
    session: AsyncSession, delivery_id: uuid.UUID, delay: float, code: int | None, error: str
) -> None:
    await (await session.connection()).execute(
        _RETRY, {"id": delivery_id, "delay": delay, "code": code, "error": error}
    )
    await session.commit()


async def failed(
    session: AsyncSession, delivery_id: uuid.UUID, code: int | None, error: str
) -> None:
    await (await session.connection()).execute(
        _FAILED, {"id": delivery_id, "code": code, "error": error}
    )
    await session.commit()


async def gone(session: AsyncSession, delivery: Claimed, code: int) -> None:
    """The endpoint answered 410 Gone: disable it, and fail this and its pending deliveries."""
    connection = await session.connection()
    error = "the endpoint answered 410 Gone and was disabled"
    await connection.execute(_DISABLE, {"id": delivery.endpoint_id})
    await connection.execute(_FAILED, {"id": delivery.id, "code": code, "error": error})
    await connection.execute(
        _FAIL_ENDPOINT, {"id": delivery.endpoint_id, "delivery_id": delivery.id, "error": error}
    )
    await session.commit()


async def release(session: AsyncSession, delivery_ids: list[uuid.UUID]) -> None:
    """End the leases of deliveries this process will not finish (it is stopping): any
    process may send them now, and the attempt they were in does not count (a rolling
    deploy spends none of a message's attempts)."""
    await (await session.connection()).execute(_RELEASE, {"ids": delivery_ids})
    await session.commit()


async def pending_count(session: AsyncSession) -> int:
    count = await (await session.connection()).scalar(_PENDING)
    await session.commit()
    return int(count or 0)


async def prune(session: AsyncSession, days: int) -> None:
    """Delete delivered and failed messages finished more than `days` ago, fail what is
    pending for a disabled endpoint, and forget previous secrets past their grace period."""
    connection = await session.connection()
    await connection.execute(_FAIL_DISABLED)
    await connection.execute(_FORGET_PREVIOUS)
    await connection.execute(_PRUNE, {"days": days})
    await session.commit()


def lease_seconds(timeout: float) -> float:
    """How long a claimed delivery is leased: its attempt's timeout and a margin, after which
    another process may take it (its own died)."""
    return timeout + 30.0
