"""sessions: a per-user session version, and the open event streams' slots

Revision ID: 0005_sessions
Revises: 0004_budgets
Create Date: 2026-12-12

`users.session_version` is written into every token (`sv`); logging out everywhere or changing
the password increments it, which ends every access token and event stream of the user at once
(refresh tokens are revoked in the same transaction). The column has a constant default, so
adding it rewrites no table.

`sse_streams` holds one row per open server-sent event stream, on any api process: the per-user
cap counts them. A stream renews its row's `expires_at` while it runs and deletes it when it
ends; a process that dies leaves rows that expire and stop counting.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_sessions"
down_revision: str | None = "0004_budgets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("session_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_table(
        "sse_streams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sse_streams_user_expires", "sse_streams", ["user_id", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sse_streams_user_expires", table_name="sse_streams")
    op.drop_table("sse_streams")
    op.drop_column("users", "session_version")
