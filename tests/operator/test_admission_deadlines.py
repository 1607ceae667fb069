"""Admission and deadlines on a real Postgres (the stack's server, a database of its own): a
generation waiting past its deadline is never admitted, even when a place frees, and the
admission timer's list of overdue generations names it (and only it) until it is settled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from genvid_devstack import apps
from genvid_operator.admission import Admissions
from support.database import scratch_database
from support.jobs import insert_job

pytestmark = pytest.mark.stack


@pytest.fixture
async def db(stack_env: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_database(stack_env, "genvid_admission") as url:
        apps.migrate({"DATABASE_URL": url})
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            yield pool
        finally:
            await pool.close()


async def _user(db: asyncpg.Pool) -> str:
    user_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO users (id, email, username, hashed_password) VALUES ($1, $2, $3, 'x')",
        user_id,
        f"{user_id.hex}@example.com",
        user_id.hex[:12],
    )
    return str(user_id)


async def test_a_generation_past_its_deadline_is_never_admitted_and_is_listed_overdue(
    db: asyncpg.Pool,
) -> None:
    user = await _user(db)
    now = datetime.now(UTC)
    created = {"resource_created": True}
    older = now - timedelta(minutes=5)
    # Queued first, so fair order would admit it first: its deadline has passed.
    late = await insert_job(
        db, user, created_at=older, deadline_at=now - timedelta(seconds=1), **created
    )
    timely = await insert_job(
        db, user, created_at=older + timedelta(seconds=1),
        deadline_at=now + timedelta(hours=1), **created,
    )  # fmt: skip
    plain = await insert_job(db, user, created_at=older + timedelta(seconds=2), **created)
    unmade = await insert_job(
        db, user, created_at=older, deadline_at=now - timedelta(seconds=1)
    )  # no resource yet: the api's outbox creates it, no pass can end it before

    admissions = Admissions(db, global_cap=10, user_cap=1)
    assert await admissions.overdue() == [late]
    assert await admissions.admit() == [timely]
    # The place frees (the admitted one settles): the next in line is not the overdue one.
    await db.execute("UPDATE video_generation_jobs SET settled_at = now() WHERE id = $1", timely)
    assert await admissions.admit() == [plain]
    admission, kicked = await admissions.check(late)
    assert (admission.admitted, kicked) == (False, [])
    rows = await db.fetch(
        "SELECT id::text, admitted_at FROM video_generation_jobs WHERE id = ANY($1::uuid[])",
        [late, unmade],
    )
    assert {row["id"]: row["admitted_at"] for row in rows} == {late: None, unmade: None}

    # Once its pass has ended it (CANCELED, settled) it is overdue no more.
    await db.execute(
        "UPDATE video_generation_jobs SET status = 'CANCELED', settled_at = now() WHERE id = $1",
        late,
    )
    assert await admissions.overdue() == []
