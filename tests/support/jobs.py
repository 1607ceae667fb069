"""Job rows written straight into the api's database, as if the api had died right after its
INSERT, or as the operator leaves them when it finishes a job."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg


async def insert_job(db: asyncpg.Pool | asyncpg.Connection, user_id: str, **values: Any) -> str:
    """A row as POST /generate inserts it, with `values` over the defaults; returns its id."""
    row = {
        "id": uuid.uuid4(),
        "user_id": uuid.UUID(user_id),
        "prompt": "a lighthouse at dusk",
        "model": "veo-3.0-fast-generate-001",
        "duration_seconds": 4,
        "aspect_ratio": "16:9",
        "status": "QUEUED",
        **values,
    }
    columns = ", ".join(row)
    placeholders = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    await db.execute(
        f"INSERT INTO video_generation_jobs ({columns}) VALUES ({placeholders})", *row.values()
    )
    return str(row["id"])
