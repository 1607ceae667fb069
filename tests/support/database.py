"""A database of a test's own on the stack's Postgres server.

Every api started during the session runs an outbox that adopts orphaned rows of the database
it uses: tests that share one would create each other's resources, so each gets its own.
"""

from __future__ import annotations

import contextlib
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg


@contextlib.asynccontextmanager
async def scratch_database(stack_env: dict[str, str], prefix: str) -> AsyncIterator[str]:
    """A new, empty database on the stack's server (its URL), dropped afterwards."""
    base = stack_env["DATABASE_URL"]
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urllib.parse.urlsplit(base)
    try:
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(base)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def fetch(database: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """One query on a connection of its own."""
    connection = await asyncpg.connect(database)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def ledger(database: str, scope: str) -> tuple[int, int]:
    """A budget scope's (a user id, or 'global') reserved and spent micro-USD, all periods."""
    rows = await fetch(
        database,
        "SELECT coalesce(sum(reserved_micros), 0) AS reserved, "
        "coalesce(sum(spent_micros), 0) AS spent FROM budget_usage WHERE scope = $1",
        scope,
    )
    return int(rows[0]["reserved"]), int(rows[0]["spent"])
