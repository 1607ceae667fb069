"""`GET /me/usage`: what the caller has spent and holds in this period, and their queue."""

from __future__ import annotations

from fastapi import APIRouter

from genvid_api import budgets
from genvid_api.budget_models import UsagePublic
from genvid_api.deps import CurrentUser, SessionDep, SettingsDep
from genvid_api.errors import AUTH_RESPONSES
from genvid_api.guardrails import Now

router = APIRouter(tags=["users"], responses=AUTH_RESPONSES)


@router.get("/me/usage", response_model=UsagePublic)
async def my_usage(
    user: CurrentUser, session: SessionDep, settings: SettingsDep, moment: Now
) -> UsagePublic:
    """The caller's budget this period (limit, spent, reserved, remaining, reset time) and
    how many of their generations run (`active`) or wait for capacity (`waiting`)."""
    standing = await budgets.usage(session, settings, user.id, moment)
    active, waiting = await budgets.counts(session, user.id)
    return UsagePublic.model_validate({**standing.money(), "active": active, "waiting": waiting})
