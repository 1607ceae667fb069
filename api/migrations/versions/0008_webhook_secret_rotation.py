"""webhook secret rotation: the previous secret signs too, for a grace period

Revision ID: 0008_webhook_secret_rotation
Revises: 0007_deadlines
Create Date: 2026-11-30

POST /webhooks/{id}/rotate-secret moves `secret` to `previous_secret` and sets
`previous_secret_expires_at` (now + GENVID_WEBHOOK_SECRET_GRACE_SECONDS): until then each
delivery carries a signature by both, so a receiver still holding the old secret keeps
verifying while it is updated. `secret_rotated_at` is when the last rotation happened. All three
are nullable without a default: adding them rewrites no table, and an endpoint never rotated
has none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_webhook_secret_rotation"
down_revision: str | None = "0007_deadlines"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_endpoints", sa.Column("previous_secret", sa.Text(), nullable=True))
    op.add_column(
        "webhook_endpoints",
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "webhook_endpoints",
        sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "secret_rotated_at")
    op.drop_column("webhook_endpoints", "previous_secret_expires_at")
    op.drop_column("webhook_endpoints", "previous_secret")
