"""budgets, admission and rate limits: the spend ledger and the admission columns

Revision ID: 0004_budgets
Revises: 0003_pending_cancel
Create Date: 2026-12-10

A generation reserves its estimated cost in the transaction that inserts it, with conditional
UPDATEs on `budget_usage` (one row per scope, a user id or 'global', and period), so no number
of concurrent requests takes a budget past its limit. When it finishes the reservation is
settled to what was charged by `genvid_settle_generation`, a function the api and the operator
both call, once per generation (guarded by `settled_at`). `admitted_at` and `queue_position`
are the operator's admission: a row counts against the concurrency caps from its admission to
its settlement. `rate_limit_windows` counts requests per key and minute for every api replica.

Existing rows: finished ones count as settled (they reserved nothing), running ones as
admitted, queued ones wait for the operator's first admission pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_budgets"
down_revision: str | None = "0003_pending_cancel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As genvid_api.models (a migration keeps its own copies: the model may move on).
WAITING = "status = 'QUEUED' AND admitted_at IS NULL AND settled_at IS NULL"
ACTIVE = "admitted_at IS NOT NULL AND settled_at IS NULL"
UNSETTLED_FINISHED = (
    "settled_at IS NULL AND status IN ('SUCCEEDED', 'FAILED', 'CANCELED', 'REJECTED')"
)

# Moves a generation's reservation to what it was charged, in both counters of the period it
# reserved in (the user's first, then the global one: the order POST /generate locks them in).
SETTLE_FUNCTION = """
CREATE FUNCTION genvid_settle_generation(job uuid, charged bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    owner uuid;
    reserved bigint;
    period date;
BEGIN
    UPDATE video_generation_jobs
       SET charged_micros = charged, settled_at = now()
     WHERE id = job AND settled_at IS NULL
    RETURNING user_id, reserved_micros, budget_period_start INTO owner, reserved, period;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF period IS NOT NULL THEN
        UPDATE budget_usage
           SET reserved_micros = reserved_micros - reserved,
               spent_micros = spent_micros + charged, updated_at = now()
         WHERE scope = owner::text AND period_start = period;
        UPDATE budget_usage
           SET reserved_micros = reserved_micros - reserved,
               spent_micros = spent_micros + charged, updated_at = now()
         WHERE scope = 'global' AND period_start = period;
    END IF;
    RETURN true;
END;
$$
"""


def upgrade() -> None:
    op.add_column(
        "video_generation_jobs",
        sa.Column("reserved_micros", sa.BigInteger(), server_default="0", nullable=False),
    )
    for name, type_ in (
        ("charged_micros", sa.BigInteger()),
        ("budget_period_start", sa.Date()),
        ("settled_at", sa.DateTime(timezone=True)),
        ("admitted_at", sa.DateTime(timezone=True)),
        ("queue_position", sa.Integer()),
    ):
        op.add_column("video_generation_jobs", sa.Column(name, type_, nullable=True))
    op.execute(
        "UPDATE video_generation_jobs SET settled_at = coalesce(finished_at, updated_at) "
        "WHERE status IN ('SUCCEEDED', 'FAILED', 'CANCELED', 'REJECTED')"
    )
    op.execute(
        "UPDATE video_generation_jobs SET admitted_at = coalesce(started_at, updated_at) "
        "WHERE status = 'RUNNING'"
    )
    op.create_index(
        "ix_video_generation_jobs_waiting",
        "video_generation_jobs",
        ["created_at"],
        postgresql_where=sa.text(WAITING),
    )
    op.create_index(
        "ix_video_generation_jobs_active",
        "video_generation_jobs",
        ["user_id"],
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_index(
        "ix_video_generation_jobs_unsettled_finished",
        "video_generation_jobs",
        ["updated_at"],
        postgresql_where=sa.text(UNSETTLED_FINISHED),
    )
    op.create_table(
        "budget_usage",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("reserved_micros", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("spent_micros", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "reserved_micros >= 0 AND spent_micros >= 0", name="ck_budget_usage_amounts"
        ),
        sa.PrimaryKeyConstraint("scope", "period_start"),
    )
    op.create_table(
        "user_budget_overrides",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("limit_micros", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("limit_micros >= 0", name="ck_user_budget_overrides_limit"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "rate_limit_windows",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start"),
    )
    op.execute(SETTLE_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION genvid_settle_generation(uuid, bigint)")
    op.drop_table("rate_limit_windows")
    op.drop_table("user_budget_overrides")
    op.drop_table("budget_usage")
    for index in ("unsettled_finished", "active", "waiting"):
        op.drop_index(f"ix_video_generation_jobs_{index}", table_name="video_generation_jobs")
    for name in (
        "queue_position",
        "admitted_at",
        "settled_at",
        "budget_period_start",
        "charged_micros",
        "reserved_micros",
    ):
        op.drop_column("video_generation_jobs", name)
