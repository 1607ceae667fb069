"""What PostgreSQL did: pg_stat_statements per statement kind, and auto_explain's plans of
slow statements and of one traced request of each kind."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bench.load import (
    Phase,
    Probes,
    Workload,
    like_pairs,
    phases,
    run_phase,
)
from bench.services import Services, alter_system, connection


def statement_kind(query: str) -> str:
    """A short name for the api's statements (their texts differ only far in)."""
    after = " after cursor" if "< (" in query else ""
    if "JOIN LATERAL" in query or "JOIN follows" in query:
        return "following feed page" + after
    if query.startswith("SELECT videos.id") and "liked_by_me" in query:
        if "WHERE videos.id =" in query:
            return "one video"
        return ("user's videos" if "videos.user_id =" in query else "public feed page") + after
    if query.startswith("SELECT users.id") and "WHERE users.id =" in query:
        return "current user (token)"
    if query.startswith("INSERT INTO likes"):
        return "like"
    if query.startswith("DELETE FROM likes"):
        return "unlike"
    if "FOR KEY SHARE" in query or "FOR NO KEY UPDATE" in query:
        return "lock video (like/unlike)"
    if query.startswith("SELECT videos.like_count"):
        return "like count"
    if "unnest($1::uuid[], $2::uuid[])" in query:
        return "(this script: pick like pairs)"
    if "typeinfo_tree" in query or "set_config(" in query:
        return "(driver: type introspection)"
    return ""


async def reset_statement_stats(url: str) -> None:
    async with connection(url) as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")


async def top_statements(url: str, limit: int = 12) -> list[dict[str, Any]]:
    async with connection(url) as conn:
        rows = await conn.fetch(
            """
            SELECT calls, total_exec_time, mean_exec_time, max_exec_time, rows,
                   shared_blks_hit, shared_blks_read, query
            FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND query !~* 'pg_stat_statements|^ *(begin|commit|rollback|select \\$1)'
            ORDER BY total_exec_time DESC
            LIMIT $1
            """,
            limit,
        )
    return [
        {
            "calls": int(row["calls"]),
            "total_ms": round(float(row["total_exec_time"]), 1),
            "mean_ms": round(float(row["mean_exec_time"]), 3),
            "max_ms": round(float(row["max_exec_time"]), 2),
            "rows_per_call": round(int(row["rows"]) / max(1, int(row["calls"])), 1),
            "blocks_per_call": round(
                (int(row["shared_blks_hit"]) + int(row["shared_blks_read"]))
                / max(1, int(row["calls"])),
                1,
            ),
            "kind": statement_kind(" ".join(str(row["query"]).split())),
            "query": " ".join(str(row["query"]).split()),
        }
        for row in rows
    ]


# The titles of the traced requests, one for each of load.phases.
TRACED = (
    "GET /feed, first page",
    "GET /feed, page 2",
    "GET /feed/following, first page, heavy follower",
    "GET /feed/following, page 2, heavy follower",
    "GET /feed/following, first page, typical follower",
    "GET /feed/following, first page, follower whose followees never publish",
    "PUT + DELETE /videos/{id}/like",
)


async def traced_plans(
    services: Services, client: httpx.AsyncClient, work: Workload, pids: Probes
) -> str:
    """auto_explain every statement of one request of each kind; return the logged plans."""
    assert services.postgres is not None
    url = services.database_url
    log = services.postgres.process.log_path
    traced = {
        "auto_explain.log_min_duration": "0",
        "auto_explain.log_analyze": "on",
        "auto_explain.log_buffers": "on",
        "auto_explain.log_timing": "on",
        "auto_explain.log_nested_statements": "on",
    }
    previous = await alter_system(url, traced)
    sections = []
    try:
        await asyncio.sleep(0.5)  # the api's backends take the new settings at their next query
        pairs = await like_pairs(url, work, 1)
        for title, phase in zip(TRACED, phases(work, 1, 2, pairs), strict=True):
            offset = log.stat().st_size
            await run_phase(client, Phase(title, phase.tasks, {}), 1, pids, record=False)
            await asyncio.sleep(0.3)
            with log.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
            sections.append(f"===== {title} =====\n{auto_explain_blocks(text)}")
    finally:
        await alter_system(url, previous)
    return "\n".join(sections)


def auto_explain_blocks(log_text: str) -> str:
    """The auto_explain entries of a PostgreSQL log: a 'plan:' line and its indented lines."""
    out: list[str] = []
    inside = False
    for line in log_text.splitlines():
        if "plan:" in line and "duration:" in line:
            inside = True
            out.append(line)
        elif inside and (line.startswith(("\t", " ")) or not line.strip()):
            out.append(line)
        else:
            inside = False
    return "\n".join(out) + "\n"
