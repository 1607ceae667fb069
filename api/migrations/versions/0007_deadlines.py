"""deadlines: the time by which a generation must be finished

Revision ID: 0007_deadlines
Revises: 0006_webhooks
Create Date: 2026-11-30

`video_generation_jobs.deadline_at` is set by POST /generate from the request's
`deadline_seconds` (whole seconds after the row's `created_at`), and copied into the resource's
`spec.deadline`; the operator cancels what is not finished by then. Nullable without a default,
so adding it rewrites no table and every existing generation has no deadline.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_deadlines"
down_revision: str | None = "0006_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "video_generation_jobs",
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("video_generation_jobs", "deadline_at")
