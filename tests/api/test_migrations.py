"""The migrations on the real Postgres, in a database of this module's own: upgrade from empty
and from 0001_initial with data in it, downgrade (to 0001_initial, and one step from head) and
upgrade again to the same schema, `alembic check` clean, and the counter triggers working after
the round trip. Nothing here assumes which revision is head."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from support import REPO
from support.database import scratch_database

pytestmark = pytest.mark.stack

SOCIAL_TABLES = {"videos", "follows", "likes", "comments"}
HEAD = ScriptDirectory.from_config(Config(str(REPO / "api" / "alembic.ini"))).get_current_head()


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "api" / "alembic.ini"), *args],
        env={**os.environ, "DATABASE_URL": database_url, "GENVID_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"alembic {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture
async def empty_database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    async with scratch_database(stack_env, "genvid_migrations") as url:
        yield url


async def schema(database_url: str) -> dict[str, Any]:
    """What the migrations made: columns, indexes, constraints, triggers, functions."""
    conn = await asyncpg.connect(database_url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "ORDER BY table_name, column_name"
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "ORDER BY indexname"
        )
        constraints = await conn.fetch(
            "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
            "ORDER BY tbl, conname"
        )
        triggers = await conn.fetch(
            "SELECT tgrelid::regclass::text AS tbl, tgname, pg_get_triggerdef(oid) AS def "
            "FROM pg_trigger WHERE NOT tgisinternal ORDER BY tbl, tgname"
        )
        functions = await conn.fetch(
            "SELECT proname, prosrc FROM pg_proc "
            "WHERE pronamespace = 'public'::regnamespace ORDER BY proname"
        )
        version = await conn.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    return {
        "tables": sorted({row["table_name"] for row in columns}),
        "columns": [tuple(row) for row in columns],
        "indexes": [tuple(row) for row in indexes],
        "constraints": [tuple(row) for row in constraints],
        "triggers": [tuple(row) for row in triggers],
        "functions": [tuple(row) for row in functions],
        "version": version,
    }


async def seed_0001(database_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A user and a SUCCEEDED job, written as 0001_initial's schema allows."""
    user_id, job_id = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO users (id, email, username, hashed_password) VALUES ($1, $2, $3, 'x')",
            user_id, f"{user_id.hex[:8]}@example.com", f"m{user_id.hex[:8]}",
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO video_generation_jobs (id, user_id, prompt, model, duration_seconds, "
            "aspect_ratio, status, bucket, object_name) VALUES ($1, $2, 'p', 'm', 4, '16:9', "
            "'SUCCEEDED', 'b', 'o.mp4')",
            job_id, user_id,
        )  # fmt: skip
    finally:
        await conn.close()
    return user_id, job_id


async def liked_video(conn: asyncpg.Connection, user_id: uuid.UUID, job_id: uuid.UUID) -> Any:
    """A video of the job, liked by its author (the like counter's trigger fires)."""
    video_id = await conn.fetchval(
        "INSERT INTO videos (id, generation_id, user_id, title) VALUES ($1, $2, $3, 't') "
        "RETURNING id",
        uuid.uuid4(), job_id, user_id,
    )  # fmt: skip
    await conn.execute("INSERT INTO likes (user_id, video_id) VALUES ($1, $2)", user_id, video_id)
    return video_id


async def test_upgrade_from_empty_downgrade_one_step_and_upgrade_again(
    empty_database: str,
) -> None:
    alembic(empty_database, "upgrade", "head")
    fresh = await schema(empty_database)
    assert fresh["version"] == HEAD
    assert set(fresh["tables"]) >= SOCIAL_TABLES | {"users", "video_generation_jobs"}
    index_names = {name for name, _ in fresh["indexes"]}
    assert {
        "ix_videos_published",
        "ix_videos_user_published",
        "uq_videos_generation_id",
        "ix_follows_followee",
        "ix_likes_video_id",
        "ix_comments_video_created",
        "ix_users_inactive",
    } <= index_names
    constraint_names = {name for _, name, _ in fresh["constraints"]}
    assert {"ck_follows_not_self", "likes_pkey", "follows_pkey"} <= constraint_names
    assert len(fresh["triggers"]) == 4

    alembic(empty_database, "downgrade", "-1")
    alembic(empty_database, "upgrade", "head")
    assert await schema(empty_database) == fresh

    alembic(empty_database, "downgrade", "0001_initial")
    down = await schema(empty_database)
    assert down["version"] == "0001_initial"
    assert not SOCIAL_TABLES & set(down["tables"])
    assert "ix_users_inactive" not in {name for name, _ in down["indexes"]}
    assert down["triggers"] == [] and down["functions"] == []

    alembic(empty_database, "upgrade", "head")
    assert await schema(empty_database) == fresh
    check = alembic(empty_database, "check")
    assert "No new upgrade operations detected" in check.stdout + check.stderr


async def test_upgrade_from_0001_keeps_data_and_the_round_trip_keeps_it_too(
    empty_database: str,
) -> None:
    alembic(empty_database, "upgrade", "0001_initial")
    user_id, job_id = await seed_0001(empty_database)
    alembic(empty_database, "upgrade", "head")

    conn = await asyncpg.connect(empty_database)
    try:
        video_id = await liked_video(conn, user_id, job_id)
        await conn.execute(
            "INSERT INTO comments (id, video_id, author_id, body) VALUES ($1, $2, $3, 'hi')",
            uuid.uuid4(), video_id, user_id,
        )  # fmt: skip
        counts = await conn.fetchrow(
            "SELECT like_count, comment_count FROM videos WHERE id = $1", video_id
        )
        assert tuple(counts) == (1, 1)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO follows VALUES ($1, $1)", user_id)
    finally:
        await conn.close()

    alembic(empty_database, "downgrade", "0001_initial")
    alembic(empty_database, "upgrade", "head")
    conn = await asyncpg.connect(empty_database)
    try:
        # 0001's rows survive; 0002's tables start empty again, triggers in place.
        assert await conn.fetchval("SELECT count(*) FROM users WHERE id = $1", user_id) == 1
        assert await conn.fetchval("SELECT status FROM video_generation_jobs") == "SUCCEEDED"
        assert await conn.fetchval("SELECT count(*) FROM videos") == 0
        video_id = await liked_video(conn, user_id, job_id)
        assert await conn.fetchval("SELECT like_count FROM videos WHERE id = $1", video_id) == 1
    finally:
        await conn.close()


async def test_0003_pending_cancel_adds_the_column_and_index_and_downgrades(
    empty_database: str,
) -> None:
    alembic(empty_database, "upgrade", "0002_social")
    await seed_0001(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute(
            "UPDATE video_generation_jobs SET status = 'RUNNING', cancel_requested = true"
        )
    finally:
        await conn.close()
    alembic(empty_database, "upgrade", "0003_pending_cancel")
    upgraded = await schema(empty_database)
    indexes = dict(upgraded["indexes"])
    predicate = indexes["ix_video_generation_jobs_pending_cancel"]
    assert "cancel_requested" in predicate and "cancel_delivered_at IS NULL" in predicate
    conn = await asyncpg.connect(empty_database)
    try:
        # A cancel requested before the migration is pending: the outbox settles it once.
        row = await conn.fetchrow("SELECT cancel_delivered_at, status FROM video_generation_jobs")
        assert tuple(row) == (None, "RUNNING")
    finally:
        await conn.close()

    alembic(empty_database, "downgrade", "0002_social")
    down = await schema(empty_database)
    assert "ix_video_generation_jobs_pending_cancel" not in dict(down["indexes"])
    assert not any(column[1] == "cancel_delivered_at" for column in down["columns"])
    alembic(empty_database, "upgrade", "0003_pending_cancel")
    assert await schema(empty_database) == upgraded
