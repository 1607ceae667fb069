"""videos (published generations), follows, likes, comments; counters kept by triggers

Revision ID: 0002_social
Revises: 0001_initial
Create Date: 2026-12-01

`videos.like_count` and `videos.comment_count` are maintained by statement-level AFTER INSERT /
AFTER DELETE triggers on `likes` and `comments` (transition tables, one UPDATE per statement,
grouped by video), in the transaction that changes the rows. So they are right whoever writes:
the api, a bulk load (the benchmark's seeding), or a cascade (deleting a user removes their likes
on other people's videos). `INSERT ... ON CONFLICT DO NOTHING` that inserts nothing counts
nothing, which makes liking twice idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_social"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
UUID = postgresql.UUID(as_uuid=True)

# (table, counter column): one trigger function per table, two triggers (a transition table
# belongs to one event).
COUNTERS = (("likes", "like_count"), ("comments", "comment_count"))
EVENTS = (("INSERT", "NEW TABLE AS new_rows"), ("DELETE", "OLD TABLE AS old_rows"))

COUNTER_FUNCTION = """
CREATE FUNCTION genvid_count_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE videos SET {column} = videos.{column} + changed.n
        FROM (SELECT video_id, count(*) AS n FROM new_rows GROUP BY video_id) AS changed
        WHERE videos.id = changed.video_id;
    ELSE
        UPDATE videos SET {column} = videos.{column} - changed.n
        FROM (SELECT video_id, count(*) AS n FROM old_rows GROUP BY video_id) AS changed
        WHERE videos.id = changed.video_id;
    END IF;
    RETURN NULL;
END
$$
"""


def _user_fk(name: str, *, primary_key: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        UUID,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    # The feeds skip deactivated authors by an anti-join on this (small) index.
    op.create_index(
        "ix_users_inactive", "users", ["id"], postgresql_where=sa.text("is_active IS false")
    )
    op.create_table(
        "videos",
        sa.Column("id", UUID, primary_key=True),
        sa.Column(
            "generation_id",
            UUID,
            sa.ForeignKey("video_generation_jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _user_fk("user_id"),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("published_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now()),
        sa.Column("like_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("comment_count", sa.Integer(), nullable=False, server_default="0"),
        sa.UniqueConstraint("generation_id", name="uq_videos_generation_id"),
        sa.CheckConstraint(
            "char_length(title) BETWEEN 1 AND 120 AND btrim(title) <> ''", name="ck_videos_title"
        ),
        sa.CheckConstraint("char_length(description) <= 2000", name="ck_videos_description"),
        sa.CheckConstraint("like_count >= 0 AND comment_count >= 0", name="ck_videos_counts"),
    )
    op.create_index(
        "ix_videos_published",
        "videos",
        [sa.text("published_at DESC"), sa.text("id DESC")],
        postgresql_include=["user_id"],
    )
    op.create_index(
        "ix_videos_user_published",
        "videos",
        ["user_id", sa.text("published_at DESC"), sa.text("id DESC")],
    )

    op.create_table(
        "follows",
        _user_fk("follower_id", primary_key=True),
        _user_fk("followee_id", primary_key=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("follower_id <> followee_id", name="ck_follows_not_self"),
    )
    op.create_index(
        "ix_follows_followee",
        "follows",
        ["followee_id", sa.text("created_at DESC"), sa.text("follower_id DESC")],
    )
    op.create_index(
        "ix_follows_follower_created",
        "follows",
        ["follower_id", sa.text("created_at DESC"), sa.text("followee_id DESC")],
    )

    op.create_table(
        "likes",
        _user_fk("user_id", primary_key=True),
        sa.Column(
            "video_id",
            UUID,
            sa.ForeignKey("videos.id", ondelete="CASCADE"),
            nullable=False,
            primary_key=True,
        ),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_likes_video_id", "likes", ["video_id"])

    op.create_table(
        "comments",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("video_id", UUID, sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
        _user_fk("author_id"),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=sa.func.now()),
        sa.Column("edited_at", TIMESTAMPTZ, nullable=True),
        sa.CheckConstraint("char_length(body) BETWEEN 1 AND 2000", name="ck_comments_body"),
    )
    op.create_index("ix_comments_video_created", "comments", ["video_id", "created_at", "id"])
    op.create_index("ix_comments_author_id", "comments", ["author_id"])

    for table, column in COUNTERS:
        op.execute(COUNTER_FUNCTION.format(table=table, column=column))
        for event, transition in EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_count_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {transition} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION genvid_count_{table}()"
            )


def downgrade() -> None:
    op.drop_table("comments")
    op.drop_table("likes")
    op.drop_table("follows")
    op.drop_table("videos")
    for table, _column in COUNTERS:
        op.execute(f"DROP FUNCTION IF EXISTS genvid_count_{table}()")
    op.drop_index("ix_users_inactive", table_name="users")
