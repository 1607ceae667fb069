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


async def ledger_discrepancies(database: str) -> dict[str, Any]:
    """What keeps the budget ledger from balancing, empty when it balances: every scope's
    counters (all periods) must hold the reservations of its unsettled generations and the
    charges of its settled ones, and no finished generation may be left unsettled."""
    found: dict[str, Any] = {}
    scopes = await fetch(database, "SELECT DISTINCT scope FROM budget_usage")
    for scope in ["global", *(row["scope"] for row in scopes if row["scope"] != "global")]:
        rows = await fetch(
            database,
            "SELECT coalesce(sum(reserved_micros) FILTER (WHERE settled_at IS NULL), 0) AS r, "
            "coalesce(sum(charged_micros) FILTER (WHERE settled_at IS NOT NULL), 0) AS s "
            "FROM video_generation_jobs WHERE budget_period_start IS NOT NULL "
            "AND ($1 = 'global' OR user_id::text = $1)",
            scope,
        )
        expected = (int(rows[0]["r"]), int(rows[0]["s"]))
        if await ledger(database, scope) != expected:
            found[scope] = {"ledger": await ledger(database, scope), "rows": expected}
    unsettled = await fetch(
        database,
        "SELECT id, status FROM video_generation_jobs WHERE settled_at IS NULL "
        "AND status IN ('SUCCEEDED', 'FAILED', 'CANCELED', 'REJECTED')",
    )
    if unsettled:
        found["finished but unsettled"] = [dict(row) for row in unsettled]
    return found
