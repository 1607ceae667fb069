"""The results: the markdown table and JSON written to bench/results/."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.config import FEED_PAGE_P99_GOAL_MS, REPO, RESULTS, SLOW_STATEMENT_MS
from bench.load import Row
from bench.services import connection
from bench.svg import bar_chart


def row_text(row: Row) -> str:
    return (
        f"{row.operation} [c={row.concurrency}]: n={row.n} p50={row.p50_ms:.1f} "
        f"p95={row.p95_ms:.1f} p99={row.p99_ms:.1f} max={row.max_ms:.1f} ms, "
        f"{row.requests_per_second:.0f} req/s, errors={row.errors}, "
        f"api full GCs={row.api_gc_pauses} (max {row.api_gc_max_ms:.0f} ms)"
    )


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def machine_text(info: dict[str, Any] | None = None) -> str:
    """The machine (`machine()`'s, by default now) as the benchmark convention states it."""
    info = info or machine()
    return f"{info['cpus']} cores ({info['cpu_model']}), {info['memory_gib']} GiB RAM"


async def pg_settings(url: str) -> dict[str, str]:
    names = [
        "server_version",
        "shared_buffers",
        "work_mem",
        "effective_cache_size",
        "random_page_cost",
        "jit",
        "max_connections",
    ]
    async with connection(url) as conn:
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in names}


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def markdown(doc: dict[str, Any]) -> str:
    sizes = doc["sizes"]
    seeded = doc["seed"]
    lines = [
        f"# Feed benchmark ({doc['mode']}): {sizes['users']:,} users, "
        f"{sizes['videos']:,} videos, {sizes['likes']:,} likes",
        "",
        f"{doc['finished_at']}; {doc['machine']['cpus']} cores ({doc['machine']['cpu_model']}), "
        f"{doc['machine']['memory_gib']} GiB; PostgreSQL {doc['postgres']['server_version']} "
        f"(shared_buffers {doc['postgres']['shared_buffers']}, work_mem "
        f"{doc['postgres']['work_mem']}); api: one uvicorn worker; "
        f"load average before/after {doc['load_before']} / {doc['machine']['load_average']}.",
        "",
        "Client-side latency over loopback in ms; the client, the api and PostgreSQL share the "
        "machine (and other people's jobs: 'other CPU' is the share of both cores used by "
        "processes outside the benchmark during the phase). CPU columns are per request. "
        "'api GC pauses': full garbage collections in the api process during the phase, and "
        "the longest (each stops the event loop, so every request in flight waits).",
        "",
        "| operation | conc. | n | p50 | p95 | p99 | max | req/s | items | api CPU | pg CPU "
        "| client CPU | other CPU | api GC pauses (max ms) | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: |",
    ]
    for row in doc["results"]:
        items = "" if row["items_per_page"] is None else f"{row['items_per_page']:g}"
        lines.append(
            f"| {row['operation']} | {row['concurrency']} | {row['n']} | {_fmt(row['p50_ms'])} "
            f"| {_fmt(row['p95_ms'])} | {_fmt(row['p99_ms'])} | {_fmt(row['max_ms'])} "
            f"| {row['requests_per_second']:.0f} | {items} "
            f"| {row['api_cpu_ms_per_request']:.1f} | {row['postgres_cpu_ms_per_request']:.1f} "
            f"| {row['client_cpu_ms_per_request']:.1f} | {100 * row['other_cpu_share']:.0f}% "
            f"| {row['api_gc_pauses']} ({row['api_gc_max_ms']:.0f}) | {row['errors']} |"
        )
    over = [
        row
        for row in doc["results"]
        if row["operation"].startswith("GET") and row["p99_ms"] > FEED_PAGE_P99_GOAL_MS
    ]
    lines += [
        "",
        f"Feed pages with p99 over {FEED_PAGE_P99_GOAL_MS:.0f} ms: "
        + (", ".join(f"{r['operation']} [c={r['concurrency']}]" for r in over) if over else "none")
        + ".",
        f"One login (`POST /auth/token`, argon2 verify): {doc['login_ms']:.0f} ms.",
        "",
        "## Seed",
        "",
        (
            "Reused the database of an earlier run (--state-dir); VACUUM ANALYZE + CHECKPOINT "
            f"{seeded['vacuum_analyze_seconds']:.0f} s."
            if seeded["reused"]
            else f"{seeded['total_seconds']:.0f} s in all: data generation and conversion "
            f"{seeded['generate_seconds']:.0f} s, COPY "
            f"{sum(seeded['copy_seconds'].values()):.0f} s, VACUUM ANALYZE + CHECKPOINT "
            f"{seeded['vacuum_analyze_seconds']:.0f} s."
        ),
        f"Database size {seeded['database_bytes'] / 2**20:,.0f} MiB. Follows per follower: "
        f"{seeded['follows_per_follower']}.",
        "",
        "All-visible pages: share of the table's pages that index-only scans need not visit, "
        "after the VACUUM and after the timed phases (like/unlike updates `videos.like_count` "
        "and so clears the marks of the pages of popular videos).",
        "",
        "| table | rows | COPY s | size MiB | all-visible before | after |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for table, count in seeded["rows"].items():
        copy = seeded["copy_seconds"].get(table)
        before = seeded["all_visible_before"].get(table, 0.0)
        after = doc["all_visible_after"].get(table, 0.0)
        lines.append(
            f"| {table} | {count:,} | {'' if copy is None else f'{copy:.1f}'} "
            f"| {seeded['table_bytes'][table] / 2**20:,.1f} | {100 * before:.0f}% "
            f"| {100 * after:.0f}% |"
        )
    lines += [
        "",
        "## Server-side time per statement (pg_stat_statements, all timed phases)",
        "",
        "| statement | calls | mean ms | max ms | rows/call | blocks/call | text |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for st in doc["statements"]:
        query = st["query"].replace("|", "\\|")
        if len(query) > 120:
            query = query[:120] + " ..."
        lines.append(
            f"| {st['kind']} | {st['calls']} | {st['mean_ms']:.2f} | {st['max_ms']:.1f} "
            f"| {st['rows_per_call']} | {st['blocks_per_call']} | `{query}` |"
        )
    lines += [
        "",
        f"Statements slower than {SLOW_STATEMENT_MS} ms server-side during the timed phases: "
        f"{doc['slow_statements']}.",
    ]
    if doc.get("plans_file"):
        lines += [
            f"Their plans, and those of one traced request of each kind (EXPLAIN ANALYZE, "
            f"BUFFERS by auto_explain): `{doc['plans_file']}`."
        ]
    return "\n".join(lines) + "\n"


def convention(doc: dict[str, Any]) -> dict[str, Any]:
    """The figures in the shape every pipeline benchmark writes (bench/summary.py reads it),
    kept to a few rows: per client count, the slowest feed page's p99 (against the page goal)
    and the slowest like/unlike's, each against its own p50 in the same phase (the tail);
    latest.md has every operation."""
    figures = []
    measured = [row for row in doc["results"] if not math.isnan(row["p99_ms"])]
    for concurrency in sorted({row["concurrency"] for row in measured}):
        rows = [row for row in measured if row["concurrency"] == concurrency]
        for kind, pages in (("feed page", True), ("like or unlike", False)):
            group = [row for row in rows if row["operation"].startswith("GET") == pages]
            if not group:
                continue
            worst = max(group, key=lambda row: row["p99_ms"])
            p50, p99 = worst["p50_ms"], worst["p99_ms"]
            figures.append(
                {
                    "name": f"slowest {kind} p99 of {len(group)} kinds, {concurrency} "
                    f"client(s): {worst['operation']}",
                    "value": round(p99, 2),
                    "unit": "ms",
                    "baseline": f"its p50 in the same phase ({p50:.1f} ms)",
                    "ratio": round(p99 / p50, 2) if p50 > 0 else None,
                    "target": f"<= {FEED_PAGE_P99_GOAL_MS:.0f} ms" if pages else None,
                }
            )
    info = doc["machine"]
    sizes = doc["sizes"]
    return {
        "benchmark": "feed",
        "title": "Feed pages and likes on a seeded PostgreSQL, through the api process",
        "measured_at": datetime.strptime(doc["finished_at"], "%Y-%m-%d %H:%M UTC")
        .replace(tzinfo=UTC)
        .isoformat(timespec="seconds"),
        "machine": machine_text(info),
        "figures": figures,
        "notes": [
            f"{doc['mode']} run: {sizes['users']:,} users, {sizes['videos']:,} videos, "
            f"{sizes['likes']:,} likes; {doc['requests_per_operation']} timed requests per "
            "operation; the full report is latest.md beside this file.",
            f"A shared machine: load average before/after {doc['load_before']} / "
            f"{info['load_average']}.",
        ],
    }


def write_results(doc: dict[str, Any], plans: str) -> list[Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    written = []
    if plans:
        plans_path = RESULTS / f"plans-{doc['mode']}.txt"
        plans_path.write_text(plans)
        doc["plans_file"] = str(plans_path.relative_to(REPO))
        written.append(plans_path)
    text = markdown(doc)
    data = json.dumps(doc, indent=2, default=str) + "\n"
    for stem in ("latest", f"feed-{doc['mode']}"):
        (RESULTS / f"{stem}.md").write_text(text)
        (RESULTS / f"{stem}.json").write_text(data)
        written += [RESULTS / f"{stem}.md", RESULTS / f"{stem}.json"]
    (RESULTS / "feed.json").write_text(json.dumps(convention(doc), indent=2) + "\n")
    latencies = {
        f"{row['operation']} [c={row['concurrency']}]": (row["p50_ms"], row["p99_ms"])
        for row in doc["results"]
        if not math.isnan(row["p99_ms"])
    }
    bar_chart(RESULTS / "feed.svg", "Feed pages and likes, ms", "ms", latencies, ("p50", "p99"))
    written += [RESULTS / "feed.json", RESULTS / "feed.svg"]
    return written
