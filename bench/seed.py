"""Seeding: COPY into the schema's real tables, the counters checked, VACUUM ANALYZE; a kept
database reused only when it was seeded from the same inputs."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

import asyncpg
from argon2 import PasswordHasher

from bench.config import BENCH_PASSWORD, GENERATOR_VERSION, REPO, Options
from bench.data import Columns, generate, table_columns
from bench.services import connection


@dataclass
class SeedReport:
    reused: bool
    rows: dict[str, int] = field(default_factory=dict)
    copy_seconds: dict[str, float] = field(default_factory=dict)
    generate_seconds: float = 0.0
    vacuum_analyze_seconds: float = 0.0
    total_seconds: float = 0.0
    database_bytes: int = 0
    table_bytes: dict[str, int] = field(default_factory=dict)
    follows_per_follower: dict[str, float] = field(default_factory=dict)
    all_visible_before: dict[str, float] = field(default_factory=dict)


SEED_MARKER = "bench-seed.json"
SEEDED_TABLES = ("users", "video_generation_jobs", "videos", "follows", "likes", "comments")


async def _column_info(conn: asyncpg.Connection, table: str) -> dict[str, bool]:
    """Column name -> whether a row must give it (NOT NULL, no default, not generated)."""
    rows = await conn.fetch(
        """
        SELECT column_name, is_nullable = 'NO' AND column_default IS NULL
               AND is_generated = 'NEVER' AND is_identity = 'NO' AS required
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = $1
        """,
        table,
    )
    if not rows:
        raise SystemExit(f"bench: table {table!r} does not exist: is the social migration in?")
    return {row["column_name"]: bool(row["required"]) for row in rows}


async def _copy(conn: asyncpg.Connection, table: str, columns: Columns) -> float:
    info = await _column_info(conn, table)
    missing = sorted(name for name, required in info.items() if required and name not in columns)
    if missing:
        raise SystemExit(f"bench: the seed gives no value for {table}.{', '.join(missing)}")
    names = [name for name in columns if name in info]
    for name in columns:
        if name not in info:
            print(f"  note: {table}.{name} is not in the schema; not seeded", flush=True)
    started = time.perf_counter()
    await conn.copy_records_to_table(
        table, records=zip(*(columns[name] for name in names), strict=True), columns=names
    )
    return time.perf_counter() - started


async def seed(url: str, opts: Options, reuse: bool) -> SeedReport:
    """Seed (unless `reuse`), then count rows and sizes."""
    report = SeedReport(reused=True) if reuse else await _seed_fresh(url, opts)
    async with connection(url) as conn:
        report.vacuum_analyze_seconds = round(await vacuum(conn), 2)
        if not reuse:
            report.total_seconds = round(report.total_seconds + report.vacuum_analyze_seconds, 2)
        report.all_visible_before = await all_visible_share(conn)
        for table in SEEDED_TABLES:
            report.rows[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
            report.table_bytes[table] = int(
                await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
            )
        report.database_bytes = int(
            await conn.fetchval("SELECT pg_database_size(current_database())")
        )
        row = await conn.fetchrow(
            """
            SELECT avg(n)::float AS mean, percentile_cont(0.5) WITHIN GROUP (ORDER BY n) AS p50,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY n) AS p99, max(n)::float AS max
            FROM (SELECT count(*) AS n FROM follows GROUP BY follower_id) AS per_follower
            """
        )
        assert row is not None
        report.follows_per_follower = {key: round(float(value), 1) for key, value in row.items()}
    return report


async def _seed_fresh(url: str, opts: Options) -> SeedReport:
    report = SeedReport(reused=False)
    started = time.perf_counter()
    print("seed: generating the data set ...", flush=True)
    data = generate(opts.sizes, opts.seed)
    password_hash = PasswordHasher().hash(BENCH_PASSWORD)
    report.generate_seconds = time.perf_counter() - started
    async with connection(url) as conn:
        existing = await conn.fetchval("SELECT count(*) FROM users")
        if existing:
            raise SystemExit(
                f"bench: the database already has {existing} users (another seed?); "
                "use a new --state-dir"
            )
        # Triggers (the like/comment counters) and foreign-key checks off for the bulk load:
        # the data is consistent by construction and the counters come with the rows.
        await conn.execute("SET session_replication_role = replica")
        # Not synchronous_commit = off: VACUUM cannot mark pages all-visible while the commit
        # that inserted their rows is not flushed, and index-only scans need those marks.
        convert_started = time.perf_counter()
        for table, columns in table_columns(data, password_hash, opts.seed):
            report.generate_seconds += time.perf_counter() - convert_started
            seconds = await _copy(conn, table, columns)
            report.copy_seconds[table] = round(seconds, 2)
            print(f"seed: {table}: {len(next(iter(columns.values()))):,} rows in {seconds:.1f}s")
            convert_started = time.perf_counter()
        await conn.execute("RESET session_replication_role")
        await _check_counters(conn)
    report.generate_seconds = round(report.generate_seconds, 2)
    report.total_seconds = round(time.perf_counter() - started, 2)
    return report


async def vacuum(conn: asyncpg.Connection) -> float:
    """The steady state autovacuum reaches: statistics, visibility map (index-only scans), no
    dead rows left by an earlier run's likes. Returns the seconds it took."""
    started = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '256MB'")
    await conn.execute("VACUUM (ANALYZE)")
    await conn.execute("CHECKPOINT")
    return time.perf_counter() - started


async def all_visible_share_at(url: str) -> dict[str, float]:
    async with connection(url) as conn:
        return await all_visible_share(conn)


async def all_visible_share(conn: asyncpg.Connection) -> dict[str, float]:
    """Share of each table's pages marked all-visible now (pg_visibility)."""
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_visibility")
    shares = {}
    for table in SEEDED_TABLES:
        row = await conn.fetchrow(
            "SELECT count(*) AS pages, count(*) FILTER (WHERE all_visible) AS visible "
            "FROM pg_visibility_map($1::regclass)",
            table,
        )
        assert row is not None
        shares[table] = round(int(row["visible"]) / max(1, int(row["pages"])), 3)
    return shares


async def _check_counters(conn: asyncpg.Connection) -> None:
    """The seeded counters equal what the triggers would have kept."""
    wrong = await conn.fetchval(
        """
        SELECT count(*) FROM videos v
        LEFT JOIN (SELECT video_id, count(*) AS n FROM likes GROUP BY video_id) l
               ON l.video_id = v.id
        LEFT JOIN (SELECT video_id, count(*) AS n FROM comments GROUP BY video_id) c
               ON c.video_id = v.id
        WHERE v.like_count <> coalesce(l.n, 0) OR v.comment_count <> coalesce(c.n, 0)
        """
    )
    if wrong:
        raise SystemExit(f"bench: {wrong} videos have counters that disagree with their rows")


def seed_marker(opts: Options) -> str:
    """What a kept database was seeded from: sizes, seed, generator and migrations."""
    migrations = hashlib.sha256()
    for path in sorted((REPO / "api" / "migrations" / "versions").glob("*.py")):
        migrations.update(path.name.encode() + b"\0" + path.read_bytes())
    return json.dumps(
        {
            **asdict(opts.sizes),
            "seed": opts.seed,
            "generator": GENERATOR_VERSION,
            "migrations": migrations.hexdigest(),
        }
    )


async def reset_schema(url: str) -> None:
    """Empty a kept database whose seed is out of date (new sizes, generator or migrations)."""
    async with connection(url) as conn:
        await conn.execute("DROP SCHEMA public CASCADE")
        await conn.execute("CREATE SCHEMA public")
