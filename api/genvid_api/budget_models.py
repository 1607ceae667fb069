"""The HTTP shapes of spending: `GET /me/usage` and the 402 refusal of `POST /generate`.

Money is a decimal string (USD) everywhere, never a float.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from genvid_api.config import BudgetPeriod


class BudgetStanding(BaseModel):
    period: BudgetPeriod
    period_start: date
    resets_at: datetime = Field(description="When the period ends and the budget is whole again.")
    limit_usd: str
    spent_usd: str = Field(description="Charged for finished generations this period.")
    reserved_usd: str = Field(description="Held for unfinished generations (their estimates).")
    remaining_usd: str


class UsagePublic(BudgetStanding):
    """The caller's budget this period, and their generations under the concurrency caps."""

    active: int = Field(description="Admitted and not finished (counts against the cap).")
    waiting: int = Field(description="Accepted, waiting for capacity (status QUEUED).")


class BudgetExceededDetail(BudgetStanding):
    code: Literal["budget_exceeded"]
    scope: Literal["user", "global"]
    message: str
    requested_usd: str = Field(description="The refused generation's estimated cost.")


class BudgetExceededBody(BaseModel):
    """402: nothing was created; `detail` says which budget and when it resets."""

    detail: BudgetExceededDetail
