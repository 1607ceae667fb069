"""Budgets: a generation reserves its estimate in the transaction that inserts it.

Checking a budget and charging it in separate steps lets concurrent requests overspend, so
there is one step: a conditional upsert on the period's counter row (`budget_usage`) that
adds the estimate only if reserved + spent + estimate stays within the limit. Postgres
re-checks the condition on the latest row version when requests collide, so no number of
concurrent requests (on any number of api processes) passes a limit. The user's row is taken
before the global one, in every transaction that touches both (settlement too), so they never
deadlock. A request that does not fit rolls back with its row: nothing half-written is left.

When the generation finishes, `genvid_settle_generation` (migration 0004_budgets) moves the
reservation to what was charged; the operator calls it as it mirrors the terminal status, the
api for the terminal states it writes itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.config import BudgetPeriod, Settings
from genvid_api.models import (
    ACTIVE,
    WAITING,
    BudgetUsage,
    Generation,
)
from genvid_contracts.pricing import estimate_micros, to_micros, usd_text

GLOBAL_SCOPE = "global"

# A scope's limit, the one place it is computed: the user's override, else the default
# (`:limit`); the global scope (`:override_for` NULL) has no override.
_LIMIT = """
    coalesce(
        (SELECT limit_micros FROM user_budget_overrides WHERE user_id = :override_for),
        :limit
    )
"""

_LIMIT_OF = sa.text(f"SELECT {_LIMIT}")

# One statement per scope: create the period's row or add to it, only within the limit.
# No row returned = refused.
_RESERVE = sa.text(
    f"""
    WITH cap AS (SELECT {_LIMIT} AS micros)
    INSERT INTO budget_usage AS usage (scope, period_start, reserved_micros)
    SELECT :scope, :period, :amount FROM cap WHERE :amount <= cap.micros
    ON CONFLICT (scope, period_start) DO UPDATE
       SET reserved_micros = usage.reserved_micros + excluded.reserved_micros,
           updated_at = now()
     WHERE usage.reserved_micros + usage.spent_micros + excluded.reserved_micros
           <= (SELECT micros FROM cap)
    RETURNING usage.reserved_micros
    """
)


def now() -> datetime:
    """The budgets' clock, a dependency: tests override it to roll a period over."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Period:
    kind: BudgetPeriod
    start: date

    @classmethod
    def at(cls, moment: datetime, kind: BudgetPeriod) -> Period:
        day = moment.astimezone(UTC).date()
        return cls(kind, day.replace(day=1) if kind == BudgetPeriod.MONTHLY else day)

    @property
    def resets_at(self) -> datetime:
        if self.kind == BudgetPeriod.MONTHLY:
            following = (self.start.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            following = self.start + timedelta(days=1)
        return datetime.combine(following, time(), UTC)


@dataclass(frozen=True)
class Usage:
    """A scope's standing in a period, in micro-USD."""

    scope: Literal["user", "global"]
    period: Period
    limit: int
    reserved: int
    spent: int

    @property
    def remaining(self) -> int:
        return max(self.limit - self.reserved - self.spent, 0)

    def money(self) -> dict[str, Any]:
        return {
            "period": self.period.kind.value,
            "period_start": self.period.start.isoformat(),
            "resets_at": self.period.resets_at.isoformat(),
            "limit_usd": usd_text(self.limit),
            "spent_usd": usd_text(self.spent),
            "reserved_usd": usd_text(self.reserved),
            "remaining_usd": usd_text(self.remaining),
        }


class BudgetExceeded(Exception):
    """The estimate does not fit in the user's or the global budget of the period."""

    def __init__(self, usage: Usage, requested: int) -> None:
        super().__init__(f"{usage.scope} budget exceeded")
        self.usage = usage
        self.requested = requested

    def detail(self) -> dict[str, Any]:
        """The 402 body's `detail`: money as decimal strings."""
        return {
            "code": "budget_exceeded",
            "scope": self.usage.scope,
            "message": f"This generation's estimated cost does not fit in the "
            f"{self.usage.scope} {self.usage.period.kind.value} budget.",
            "requested_usd": usd_text(self.requested),
            **self.usage.money(),
        }


def estimate(settings: Settings, model: str, seconds: int) -> int:
    """What a generation reserves; 0 for a model without a price (the operator rejects it)."""
    return estimate_micros(settings.prices_usd_per_second, model, seconds) or 0


def _limit_params(settings: Settings, user_id: uuid.UUID | None) -> dict[str, Any]:
    default = (
        settings.global_daily_budget_usd if user_id is None else settings.user_daily_budget_usd
    )
    return {"limit": to_micros(default), "override_for": user_id}


async def limit(session: AsyncSession, settings: Settings, user_id: uuid.UUID | None) -> int:
    """The user's limit (the global one, user_id None), by the expression reserve checks."""
    result = await (await session.connection()).execute(_LIMIT_OF, _limit_params(settings, user_id))
    return int(result.scalar_one())


async def usage(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID | None, moment: datetime
) -> Usage:
    """The user's standing (or the global one, user_id None) in the period of `moment`."""
    period = Period.at(moment, settings.budget_period)
    scope = GLOBAL_SCOPE if user_id is None else str(user_id)
    row = await session.get(BudgetUsage, (scope, period.start), populate_existing=True)
    return Usage(
        scope="global" if user_id is None else "user",
        period=period,
        limit=await limit(session, settings, user_id),
        reserved=row.reserved_micros if row else 0,
        spent=row.spent_micros if row else 0,
    )


async def reserve(
    session: AsyncSession, settings: Settings, generation: Generation, moment: datetime
) -> None:
    """Reserve the generation's estimate in the user's, then the global, counter of the
    period, in the session's transaction (the one that inserted it); raise BudgetExceeded if
    either would pass its limit (the caller rolls back)."""
    if not settings.budgets_enabled:
        return
    amount = estimate(settings, generation.model, generation.duration_seconds)
    period = Period.at(moment, settings.budget_period)
    for user_id in (generation.user_id, None):
        taken = await (await session.connection()).execute(
            _RESERVE,
            {
                "scope": GLOBAL_SCOPE if user_id is None else str(user_id),
                "period": period.start,
                "amount": amount,
                **_limit_params(settings, user_id),
            },
        )
        if taken.first() is None:
            raise BudgetExceeded(await usage(session, settings, user_id, moment), amount)
    generation.reserved_micros = amount
    generation.budget_period_start = period.start


async def settle(session: AsyncSession, job_id: uuid.UUID, charged_micros: int) -> bool:
    """Settle a finished generation once, in the session's transaction; False if already settled."""
    result = await (await session.connection()).execute(
        sa.text("SELECT genvid_settle_generation(:job, :charged)"),
        {"job": job_id, "charged": charged_micros},
    )
    return bool(result.scalar_one())


async def release(session: AsyncSession, generation: Generation) -> None:
    """Settle a generation the api finished itself (it never reached a provider) at nothing."""
    await session.flush()
    await settle(session, generation.id, 0)
    await session.refresh(generation)


async def counts(session: AsyncSession, user_id: uuid.UUID) -> tuple[int, int]:
    """(active, waiting) generations of the user, as the operator's admission counts them."""
    row = Generation
    statement = select(
        func.count().filter(sa.text(ACTIVE)),
        func.count().filter(sa.text(WAITING)),
    ).where(
        col(row.user_id) == user_id,
        sa.or_(sa.text(ACTIVE), sa.text(WAITING)),
    )
    active, waiting = (await session.exec(statement)).one()
    return int(active), int(waiting)
