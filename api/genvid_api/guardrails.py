"""POST /generate's guardrails as HTTP: the per-user rate limit (429 with Retry-After) and the
budget reservation (402 with the budget's standing), both refusing before anything exists."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api import budgets, ratelimit
from genvid_api.budget_models import BudgetExceededBody
from genvid_api.config import Settings
from genvid_api.context import AppContext
from genvid_api.deps import error
from genvid_api.metrics import GENERATE_REFUSALS
from genvid_api.models import VideoGenerationJob

Now = Annotated[datetime, Depends(budgets.now)]

GENERATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    402: {
        "description": "The estimated cost does not fit in the user's or the global budget "
        "of the period; nothing was created",
        "model": BudgetExceededBody,
    },
    429: {
        **error("Too many generation requests this minute; retry after Retry-After seconds"),
        "headers": {
            "Retry-After": {
                "description": "Seconds until the limit's window ends",
                "schema": {"type": "integer"},
            }
        },
    },
}


async def count_request(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, moment: datetime
) -> None:
    """Count the request against the user's per-minute limit, or refuse it (429)."""
    try:
        await ratelimit.hit(session, f"generate:{user_id}", settings.generate_per_minute, moment)
    except ratelimit.Limited as limited:
        GENERATE_REFUSALS.labels(reason="rate_limited").inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"At most {settings.generate_per_minute} generation requests a minute",
            headers={"Retry-After": str(limited.retry_after)},
        ) from None


def reservation(
    session: AsyncSession, ctx: AppContext, moment: datetime
) -> Callable[[VideoGenerationJob], Awaitable[None]]:
    """The hook `jobs.insert` runs in its transaction: reserve, or refuse (402)."""

    async def reserve(job: VideoGenerationJob) -> None:
        try:
            await budgets.reserve(session, ctx.settings, job, moment)
        except budgets.BudgetExceeded as exceeded:
            GENERATE_REFUSALS.labels(reason=f"budget_{exceeded.usage.scope}").inc()
            raise HTTPException(
                status.HTTP_402_PAYMENT_REQUIRED, detail=exceeded.detail()
            ) from None

    return reserve
