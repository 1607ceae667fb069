"""cancels the outbox still has to deliver: cancel_delivered_at and a partial index

Revision ID: 0003_pending_cancel
Revises: 0002_social
Create Date: 2026-12-08

The outbox re-sends `spec.cancel=true` for jobs whose cancel may not have reached their
resource. Without a record of delivery it re-sent every such cancel on every pass until the
operator's transition arrived, and forever when the resource was gone (404): nothing would ever
change the row. `cancel_delivered_at` (the api's) records that the resource has the cancel, or
that there is no resource left to tell; the partial index keeps the outbox's scan to the few
rows still pending. The column is nullable without a default (no table rewrite); the index is
built in the migration's transaction (one scan of the table, writes wait meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_pending_cancel"
down_revision: str | None = "0002_social"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As genvid_api.models.PENDING_CANCEL (a migration keeps its own copy: the model may move on).
PENDING_CANCEL = (
    "cancel_requested AND cancel_delivered_at IS NULL AND status IN ('QUEUED', 'RUNNING')"
)


def upgrade() -> None:
    op.add_column(
        "video_generation_jobs",
        sa.Column("cancel_delivered_at", sa.DateTime(timezone=True), nullable=True),
    )
    # Cancels requested before this migration: delivered or not, one more patch is harmless,
    # so they stay pending (NULL) and the outbox settles them once.
    op.create_index(
        "ix_video_generation_jobs_pending_cancel",
        "video_generation_jobs",
        ["updated_at"],
        postgresql_where=sa.text(PENDING_CANCEL),
    )


def downgrade() -> None:
    op.drop_index("ix_video_generation_jobs_pending_cancel", table_name="video_generation_jobs")
    op.drop_column("video_generation_jobs", "cancel_delivered_at")
