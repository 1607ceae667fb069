"""POST /generate's guardrails: the per-user rate limit (429 with Retry-After) and the budget
reservation (402 with the budget's standing), both refusing before anything exists."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api import budgets, ratelimit
from genvid_api.config import Settings
from genvid_api.context import AppContext
from genvid_api.errors import OverBudget, TooManyRequests, responses
from genvid_api.metrics import GENERATE_REFUSALS
from genvid_api.models import Generation

Now = Annotated[datetime, Depends(budgets.now)]

GENERATE_RESPONSES = responses(
    (
        OverBudget,
        "The estimated cost does not fit in the user's or the global budget of the period; "
        "nothing was created",
    ),
    (TooManyRequests, "Too many generation requests this minute; retry after Retry-After"),
)


async def count_request(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, moment: datetime
) -> None:
    """Count the request against the user's per-minute limit, or refuse it (429)."""
    if not settings.rate_limits:
        return
    try:
        await ratelimit.hit(session, f"generate:{user_id}", settings.generate_per_minute, moment)
    except ratelimit.Limited as limited:
        GENERATE_REFUSALS.labels(reason="rate_limited").inc()
        raise TooManyRequests(
            f"At most {settings.generate_per_minute} generation requests a minute",
            retry_after=limited.retry_after,
        ) from None


def reservation(
    session: AsyncSession, ctx: AppContext, moment: datetime
) -> Callable[[Generation], Awaitable[None]]:
    """The hook `generations.insert` runs in its transaction: reserve, or refuse (402)."""

    async def reserve(generation: Generation) -> None:
        try:
            await budgets.reserve(session, ctx.settings, generation, moment)
        except budgets.BudgetExceeded as exceeded:
            GENERATE_REFUSALS.labels(reason=f"budget_{exceeded.usage.scope}").inc()
            raise OverBudget(exceeded.detail()) from None

    return reserve
