"""Feed and like latency on a seeded, real PostgreSQL, through the real api process.

A benchmark, not a test: it asserts nothing about speed, it measures and reports.

    .venv/bin/python bench/feed.py            # 10,000 users, 100,000 videos, 1,000,000 likes
    .venv/bin/python bench/feed.py --quick    # 1,000 / 10,000 / 100,000, fewer requests
    .venv/bin/python bench/feed.py --help     # sizes, request counts, --state-dir

Start to finish, and everything it starts is stopped at the end (also on errors, Ctrl-C and
SIGTERM; a failed run keeps its logs in /tmp/<state folder>-logs):

1. A throwaway PostgreSQL and NATS from the dev stack's own modules, in a temporary state folder
   (or `--state-dir`, kept: a later run with the same sizes, seed, generator and migrations
   reuses its database, anything else re-seeds it). PostgreSQL keeps the dev stack's settings;
   only `pg_stat_statements` and `auto_explain` are preloaded (one restart).
2. `alembic upgrade head`, then the seed with COPY into the schema's real tables: users (one
   precomputed argon2 hash for all), a SUCCEEDED `video_generation_jobs` row per video, videos
   published over 90 days (denser towards now), follows (~N per user; 1% heavy followers at
   20x; 2% "quiet" followers who follow only accounts that never publish), likes (distinct
   pairs, skewed towards recent and popular videos), a few comments. Triggers are off during
   COPY (session_replication_role = replica), so the counters the triggers keep
   (`videos.like_count`, `comment_count`) are written from the generated data and checked
   against the rows afterwards. Then VACUUM ANALYZE (visibility map set: the steady state
   autovacuum reaches) and CHECKPOINT, before every run.
3. The api as a real uvicorn process, one worker as the chart runs it, outbox off, with a
   kubeconfig that names an unused loopback port (the api only reads it at startup; no route
   measured here talks to Kubernetes). Its factory is `feed:create_bench_app`, which returns
   `genvid_api.main:create_app()` unchanged and logs the api's full GC pauses. Access tokens
   are signed with the api's own code and key.
4. Warm-up, then for each operation N timed requests from one httpx client, sequentially
   (concurrency 1) and then from 4 concurrent tasks: GET /feed (first page; deep pages by
   next_cursor), GET /feed/following (heavy, typical and quiet followers), PUT and DELETE
   /videos/{id}/like (each PUT is followed by its DELETE, so the data is unchanged).
5. Plans: auto_explain logs those of statements slower than 25 ms during the timed phases, and
   of every statement of one traced request of each kind (ANALYZE, BUFFERS), into
   `bench/results/plans-<mode>.txt`.
6. `bench/results/latest.{md,json}` and `feed-<mode>.{md,json}`: latency table, CPU split,
   api GC pauses, seed time, database size, visibility map, server-side time per statement.

Latencies are client-side wall times over loopback, on the same 2-core machine as the api,
PostgreSQL and the client itself; CPU used by other processes during each phase is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import math
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
import types
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import numpy.typing as npt
from argon2 import PasswordHasher

from genvid_api.config import Settings
from genvid_api.security import create_access_token
from genvid_devstack import apps
from genvid_devstack.nats import Nats, start_nats
from genvid_devstack.postgres import Postgres, start_postgres
from genvid_devstack.process import Process, StartupError, free_port, http_ok, spawn, wait_until

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

JWT_SECRET = "bench-secret-" + "k" * 40
BUCKET = "genvid-previews"
BENCH_PASSWORD = "bench-Password-4711"
TOKEN_TTL_SECONDS = 24 * 3600
DAY = 86400.0
PUBLISH_SPAN_DAYS = 90.0
HEAVY_FOLLOWER_SHARE = 0.01  # users following ~20x the typical number
HEAVY_FOLLOWER_FACTOR = 20
QUIET_FOLLOWER_SHARE = 0.02  # users who follow only accounts that never publish
GENERATOR_VERSION = 2  # part of a kept database's marker: a change re-seeds
FEED_PAGE_P99_GOAL_MS = 50.0
SLOW_STATEMENT_MS = 25  # auto_explain logs the plan (no ANALYZE) of statements slower than this

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# ---------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class Sizes:
    users: int
    videos: int
    likes: int
    follows_per_user: int
    comments: int


FULL = Sizes(users=10_000, videos=100_000, likes=1_000_000, follows_per_user=50, comments=20_000)
QUICK = Sizes(users=1_000, videos=10_000, likes=100_000, follows_per_user=50, comments=2_000)


@dataclass(frozen=True)
class Options:
    mode: str
    sizes: Sizes
    requests: int
    warmup: int
    concurrency: int
    deep_pages: int
    seed: int
    state_dir: Path | None
    pg_settings: dict[str, str]
    explain: bool


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/feed.py",
        description="Seed users, videos, follows and likes; time feed pages and like/unlike.",
    )
    parser.add_argument("--quick", action="store_true", help="1k users, 10k videos, 100k likes")
    parser.add_argument("--users", type=int)
    parser.add_argument("--videos", type=int)
    parser.add_argument("--likes", type=int)
    parser.add_argument("--follows-per-user", type=int)
    parser.add_argument("--comments", type=int)
    parser.add_argument("--requests", type=int, help="timed requests per operation and run")
    parser.add_argument("--warmup", type=int, help="untimed requests per operation first")
    parser.add_argument("--concurrency", type=int, default=4, help="the concurrent run's tasks")
    parser.add_argument("--deep-pages", type=int, default=20, help="pages per cursor walk")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="keep PostgreSQL here; a database seeded with the same sizes is reused",
    )
    parser.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra PostgreSQL setting (ALTER SYSTEM), e.g. shared_buffers=1GB",
    )
    parser.add_argument("--no-explain", action="store_true", help="skip the auto_explain pass")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        users=args.users or base.users,
        videos=args.videos or base.videos,
        likes=args.likes if args.likes is not None else base.likes,
        follows_per_user=args.follows_per_user or base.follows_per_user,
        comments=args.comments if args.comments is not None else base.comments,
    )
    if sizes.users < 10 or sizes.videos < 10:
        parser.error("at least 10 users and 10 videos")
    if sizes.likes > sizes.users * sizes.videos // 4:
        parser.error("too many likes for that many users and videos")
    pg_settings: dict[str, str] = {}
    for item in args.pg_setting:
        name, sep, value = item.partition("=")
        if not sep or not name.replace("_", "").replace(".", "").isalnum():
            parser.error(f"--pg-setting wants NAME=VALUE, got {item!r}")
        pg_settings[name] = value
    mode = "quick" if args.quick else "full"
    if sizes not in (FULL, QUICK):
        mode = "custom"
    requests = args.requests or (100 if args.quick else 300)
    return Options(
        mode=mode,
        sizes=sizes,
        requests=requests,
        warmup=args.warmup if args.warmup is not None else min(50, requests),
        concurrency=max(1, args.concurrency),
        deep_pages=max(2, args.deep_pages),
        seed=args.seed,
        state_dir=args.state_dir.resolve() if args.state_dir else None,
        pg_settings=pg_settings,
        explain=not args.no_explain,
    )


# ---------------------------------------------------------------------------------------------
# Processes: PostgreSQL, NATS, the api


@dataclass
class Services:
    root: Path
    postgres: Postgres | None = None
    nats: Nats | None = None
    api: Process | None = None
    api_url: str = ""

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def gc_file(self) -> Path:
        return self.logs / "api-gc-pauses.txt"

    @property
    def database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url

    def start_postgres(self, settings: dict[str, str]) -> None:
        """Start, set the preload libraries and `settings` (ALTER SYSTEM), restart."""
        self.postgres = start_postgres(self.root, self.logs)
        wanted = {
            "shared_preload_libraries": "pg_stat_statements,auto_explain",
            **settings,
        }
        current = asyncio.run(_alter_system(self.postgres.url, wanted))
        if current != wanted:  # a restart is needed for the preload libraries (or settings)
            self.postgres.process.stop()
            self.postgres = start_postgres(self.root, self.logs)
        slow = {"auto_explain.log_min_duration": f"{SLOW_STATEMENT_MS}ms"}
        asyncio.run(_alter_system(self.postgres.url, slow))

    def start_nats(self) -> None:
        self.nats = start_nats(self.root, self.logs)

    def api_env(self) -> dict[str, str]:
        assert self.nats is not None
        kubeconfig = self.root / "kubeconfig-unused"
        kubeconfig.write_text(_UNUSED_KUBECONFIG.format(port=free_port()))
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("GENVID_")
            and key not in ("DATABASE_URL", "NATS_URL", "KUBECONFIG", "STORAGE_EMULATOR_HOST")
        }
        return {
            **inherited,
            "GENVID_DATABASE_URL": self.database_url,
            "GENVID_NATS_URL": self.nats.url,
            # Signing is local computation; the URLs point at a storage emulator never fetched.
            "GENVID_STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
            "GENVID_BUCKET": BUCKET,
            "GENVID_SIGNING_MODE": "local",
            "GENVID_KUBECONFIG": str(kubeconfig),
            "GENVID_NAMESPACE": "genvid-bench",
            "GENVID_JWT_SECRET": JWT_SECRET,
            "GENVID_ACCESS_TOKEN_TTL_SECONDS": str(TOKEN_TTL_SECONDS),
            "GENVID_OUTBOX_ENABLED": "false",
        }

    def migrate(self) -> None:
        apps.migrate({"DATABASE_URL": self.database_url, "GENVID_DATABASE_URL": self.database_url})

    def start_api(self) -> None:
        """One uvicorn worker, as the chart runs it (replicas scale out). Not `--workers N`:
        measured here, every response then takes ~40 ms more (Nagle and delayed ACK: the
        socket uvicorn binds for its workers has proto 0, and asyncio sets TCP_NODELAY only on
        sockets whose proto is IPPROTO_TCP)."""
        port = free_port()
        env = self.api_env()
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parent), *filter(None, [env.get("PYTHONPATH")])]
        )
        env[GC_FILE_ENV] = str(self.gc_file)
        self.api = spawn(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "feed:create_bench_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "5",
            ],
            log_dir=self.logs,
            env=env,
            cwd=REPO,
        )
        self.api_url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: http_ok(f"{self.api_url}/healthz"), what="api", timeout=90, process=self.api
        )

    def stop(self) -> None:
        for process in (
            self.api,
            self.nats.process if self.nats else None,
            self.postgres.process if self.postgres else None,
        ):
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop()
        self.api = None

    def log_tails(self) -> str:
        parts = []
        for process in (
            self.api,
            self.postgres.process if self.postgres else None,
            self.nats.process if self.nats else None,
        ):
            if process is not None:
                parts.append(f"--- {process.log_path} ---\n{process.log_tail(40)}")
        return "\n".join(parts)


_UNUSED_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: none
  cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
users:
- name: none
  user: {{token: unused}}
contexts:
- name: none
  context: {{cluster: none, user: none}}
current-context: none
"""


async def _alter_system(url: str, settings: dict[str, str]) -> dict[str, str]:
    """Apply `settings` with ALTER SYSTEM; return what was in force before."""
    conn = await asyncpg.connect(url)
    try:
        before = {}
        for name, value in settings.items():
            before[name] = await conn.fetchval(
                "SELECT setting FROM pg_settings WHERE name = $1", name
            )
            if name == "shared_preload_libraries":  # a list: one quoted item each
                quoted = ", ".join(_quote(item.strip()) for item in value.split(","))
            else:
                quoted = _quote(value)
            await conn.execute(f"ALTER SYSTEM SET {name} = {quoted}")
        await conn.execute("SELECT pg_reload_conf()")
        return {k: str(v) for k, v in before.items()}
    finally:
        await conn.close()


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# The data set (numpy: reproducible from --seed, a few seconds for the full size)


@dataclass
class Dataset:
    now: float
    user_ids: list[uuid.UUID]
    user_created: FloatArray
    video_ids: list[uuid.UUID]
    job_ids: list[uuid.UUID]
    video_owner: IntArray
    video_published: FloatArray
    follow_a: IntArray
    follow_b: IntArray
    follow_created: FloatArray
    like_user: IntArray
    like_video: IntArray
    like_created: FloatArray
    comment_video: IntArray
    comment_author: IntArray
    comment_created: FloatArray
    like_count: IntArray
    comment_count: IntArray


def _uuids(rng: np.random.Generator, n: int) -> list[uuid.UUID]:
    raw = rng.bytes(16 * n)
    return [uuid.UUID(bytes=raw[i * 16 : i * 16 + 16], version=4) for i in range(n)]


def _normalized(weights: FloatArray) -> FloatArray:
    normalized: FloatArray = weights / weights.sum()
    return normalized


def _distinct_pairs(
    rng: np.random.Generator,
    p_a: FloatArray,
    p_b: FloatArray,
    target: int,
) -> tuple[IntArray, IntArray]:
    """`target` distinct (a, b) pairs, a drawn with weights p_a and b with p_b."""
    n_b = len(p_b)
    keys: IntArray = np.empty(0, dtype=np.int64)
    for _ in range(20):
        missing = target - len(keys)
        if missing <= 0:
            break
        draw = int(missing * 1.25) + 1000
        a = rng.choice(len(p_a), size=draw, p=p_a).astype(np.int64)
        b = rng.choice(n_b, size=draw, p=p_b).astype(np.int64)
        keys = np.unique(np.concatenate([keys, a * n_b + b]))
    keys = np.sort(rng.permutation(keys)[:target])
    return keys // n_b, keys % n_b


def generate(sizes: Sizes, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    now = float(int(time.time()))
    n_users, n_videos = sizes.users, sizes.videos

    user_ids = _uuids(rng, n_users)
    user_created = now - rng.uniform(200, 400, n_users) * DAY

    # Creators: 30% of users never publish; the rest by a heavy-tailed activity.
    activity = rng.lognormal(0.0, 1.5, n_users) * (rng.random(n_users) >= 0.3)
    video_owner = rng.choice(n_users, size=n_videos, p=_normalized(activity)).astype(np.int64)
    # Published over the last 90 days, density growing linearly towards now; sorted oldest first
    # (the order rows arrive in production).
    age = PUBLISH_SPAN_DAYS * DAY * (1.0 - np.sqrt(rng.random(n_videos))) + 60.0
    video_published = np.sort(now - age)
    video_ids = _uuids(rng, n_videos)
    job_ids = _uuids(rng, n_videos)

    # Follows: ~follows_per_user each (log-normal), 1% heavy followers at 20x; followees drawn
    # by how much they publish (people follow creators), except for 2% "quiet" followers who
    # follow only accounts that never publish (friends who watch): their following feed is
    # empty, the worst case for a query that walks all videos looking for their followees'.
    per_user = sizes.follows_per_user
    want = np.clip(np.rint(rng.lognormal(math.log(0.9 * per_user), 0.5, n_users)), 1, None)
    heavy = rng.random(n_users) < HEAVY_FOLLOWER_SHARE
    want[heavy] = HEAVY_FOLLOWER_FACTOR * per_user
    want = np.minimum(want, (n_users - 1) // 2).astype(np.int64)
    videos_of = np.bincount(video_owner, minlength=n_users).astype(np.float64)
    followee_p = _normalized(videos_of + 1.0)
    draws = np.repeat(np.arange(n_users, dtype=np.int64), want * 2)
    targets = rng.choice(n_users, size=len(draws), p=followee_p).astype(np.int64)
    quiet = (rng.random(n_users) < QUIET_FOLLOWER_SHARE) & ~heavy
    non_creators = np.flatnonzero(videos_of == 0)
    quiet_draws = quiet[draws]
    if len(non_creators):
        targets[quiet_draws] = rng.choice(non_creators, size=int(quiet_draws.sum()))
    keep = draws != targets
    keys = np.unique(draws[keep] * n_users + targets[keep])
    fa, fb = keys // n_users, keys % n_users
    order = np.lexsort((rng.random(len(fa)), fa))  # by follower, randomly within
    fa, fb = fa[order], fb[order]
    first = np.searchsorted(fa, np.arange(n_users))
    rank = np.arange(len(fa)) - first[fa]
    kept = rank < want[fa]
    follow_a, follow_b = fa[kept], fb[kept]
    follow_created = now - rng.uniform(0, 200, len(follow_a)) * DAY

    # Likes: distinct (user, video), videos weighted by popularity x recency (10-day decay,
    # with a floor), likers by a heavy-tailed activity.
    age_days = (now - video_published) / DAY
    video_weight = rng.lognormal(0.0, 1.0, n_videos) * np.exp(-age_days / 10.0) + 0.02
    video_p = _normalized(video_weight)
    liker_p = _normalized(rng.lognormal(0.0, 1.0, n_users))
    like_user, like_video = _distinct_pairs(rng, liker_p, video_p, sizes.likes)
    like_created = np.minimum(
        video_published[like_video] + rng.exponential(2 * DAY, len(like_video)), now - 1.0
    )

    comment_video = rng.choice(n_videos, size=sizes.comments, p=video_p).astype(np.int64)
    comment_author = rng.choice(n_users, size=sizes.comments, p=liker_p).astype(np.int64)
    comment_created = np.minimum(
        video_published[comment_video] + rng.exponential(DAY, sizes.comments), now - 1.0
    )

    return Dataset(
        now=now,
        user_ids=user_ids,
        user_created=user_created,
        video_ids=video_ids,
        job_ids=job_ids,
        video_owner=video_owner,
        video_published=video_published,
        follow_a=follow_a,
        follow_b=follow_b,
        follow_created=follow_created,
        like_user=like_user,
        like_video=like_video,
        like_created=like_created,
        comment_video=comment_video,
        comment_author=comment_author,
        comment_created=comment_created,
        like_count=np.bincount(like_video, minlength=n_videos).astype(np.int64),
        comment_count=np.bincount(comment_video, minlength=n_videos).astype(np.int64),
    )


# Words for prompts, titles and comments: varied lengths, nothing meaningful.
_ADJ = ("neon", "misty", "golden", "slow-motion", "aerial", "tiny", "ancient", "quiet", "stormy")
_NOUN = ("fox", "lighthouse", "city", "robot", "forest", "river", "dragon", "cat", "train", "comet")
_ACT = ("drifting through", "dancing in", "sleeping under", "racing across", "glowing above")
_PLACE = ("a rainy street", "the northern lights", "a desert canyon", "a paper world", "the sea")


def _phrase(rnd: random.Random) -> str:
    return f"{rnd.choice(_ADJ)} {rnd.choice(_NOUN)} {rnd.choice(_ACT)} {rnd.choice(_PLACE)}"


def _times(epoch: FloatArray) -> list[datetime]:
    return [datetime.fromtimestamp(t, UTC) for t in epoch.tolist()]


def _pick(items: Sequence[uuid.UUID], index: IntArray) -> list[uuid.UUID]:
    return [items[i] for i in index.tolist()]


def table_columns(data: Dataset, password_hash: str, seed: int) -> Iterator[tuple[str, Columns]]:
    """The rows of each table as columns, in COPY order (parents first)."""
    rnd = random.Random(seed)
    n_users, n_videos = len(data.user_ids), len(data.video_ids)
    yield (
        "users",
        {
            "id": data.user_ids,
            "email": [f"bench-user-{i}@example.com" for i in range(n_users)],
            "username": [f"bench_user_{i}" for i in range(n_users)],
            "hashed_password": [password_hash] * n_users,
            "is_active": [True] * n_users,
            "created_at": _times(data.user_created),
        },
    )

    finished = data.video_published - np.random.default_rng(seed).exponential(1800, n_videos) - 5
    started = finished - 60.0
    created = started - 3.0
    stamps = [datetime.fromtimestamp(t, UTC).strftime("%Y%m%dT%H%M%SZ") for t in finished.tolist()]
    prompts = [f"{_phrase(rnd)}, cinematic, {rnd.randint(24, 60)} fps" for _ in range(n_videos)]
    finished_at = _times(finished)
    yield (
        "video_generation_jobs",
        {
            "id": data.job_ids,
            "user_id": _pick(data.user_ids, data.video_owner),
            "prompt": prompts,
            "model": ["veo-3.0-fast-generate-001"] * n_videos,
            "duration_seconds": [4] * n_videos,
            "aspect_ratio": [rnd.choice(("16:9", "16:9", "9:16")) for _ in range(n_videos)],
            "status": ["SUCCEEDED"] * n_videos,
            "attempts": [1] * n_videos,
            "bucket": [BUCKET] * n_videos,
            "object_name": [
                f"previews/{j}/preview_{s}.mp4" for j, s in zip(data.job_ids, stamps, strict=True)
            ],
            "poster_object": [
                f"previews/{j}/poster_{s}.jpg" for j, s in zip(data.job_ids, stamps, strict=True)
            ],
            "size_bytes": [rnd.randint(600_000, 2_500_000) for _ in range(n_videos)],
            "video_duration_seconds": [4.0] * n_videos,
            "cost_usd": [Decimal("0.400000")] * n_videos,
            "resource_created": [True] * n_videos,
            "cancel_requested": [False] * n_videos,
            "event_seq": [3] * n_videos,
            "created_at": _times(created),
            "updated_at": finished_at,
            "started_at": _times(started),
            "finished_at": finished_at,
        },
    )
    yield (
        "videos",
        {
            "id": data.video_ids,
            "generation_id": data.job_ids,
            "user_id": _pick(data.user_ids, data.video_owner),
            "title": [_phrase(rnd).capitalize()[:120] for _ in range(n_videos)],
            "description": [
                "" if rnd.random() < 0.4 else f"{prompt}. #{rnd.choice(_NOUN)}"
                for prompt in prompts
            ],
            "published_at": _times(data.video_published),
            "like_count": data.like_count.tolist(),
            "comment_count": data.comment_count.tolist(),
        },
    )
    order = np.argsort(data.follow_created, kind="stable")
    yield (
        "follows",
        {
            "follower_id": _pick(data.user_ids, data.follow_a[order]),
            "followee_id": _pick(data.user_ids, data.follow_b[order]),
            "created_at": _times(data.follow_created[order]),
        },
    )
    order = np.argsort(data.like_created, kind="stable")
    yield (
        "likes",
        {
            "user_id": _pick(data.user_ids, data.like_user[order]),
            "video_id": _pick(data.video_ids, data.like_video[order]),
            "created_at": _times(data.like_created[order]),
        },
    )
    order = np.argsort(data.comment_created, kind="stable")
    n_comments = len(order)
    yield (
        "comments",
        {
            "id": _uuids(np.random.default_rng(seed + 1), n_comments),
            "video_id": _pick(data.video_ids, data.comment_video[order]),
            "author_id": _pick(data.user_ids, data.comment_author[order]),
            "body": [f"Love the {_phrase(rnd)}!" for _ in range(n_comments)],
            "created_at": _times(data.comment_created[order]),
        },
    )


Columns = dict[str, Sequence[Any]]


# ---------------------------------------------------------------------------------------------
# Seeding


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
    conn = await asyncpg.connect(url)
    try:
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
    finally:
        await conn.close()
    return report


async def _seed_fresh(url: str, opts: Options) -> SeedReport:
    report = SeedReport(reused=False)
    started = time.perf_counter()
    print("seed: generating the data set ...", flush=True)
    data = generate(opts.sizes, opts.seed)
    password_hash = PasswordHasher().hash(BENCH_PASSWORD)
    report.generate_seconds = time.perf_counter() - started
    conn = await asyncpg.connect(url)
    try:
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
    finally:
        await conn.close()
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


async def _all_visible_share_at(url: str) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    try:
        return await all_visible_share(conn)
    finally:
        await conn.close()


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


# ---------------------------------------------------------------------------------------------
# CPU accounting (/proc): who used the two cores during a phase


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    api: float
    postgres: float
    client: float
    machine_busy: float
    machine_total: float


def _machine_times() -> tuple[float, float]:
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


def cpu_snapshot(api_pgid: int, postmaster: int) -> CpuSnapshot:
    api = pg = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        rest = text[text.rindex(")") + 2 :].split()
        ppid, pgrp = int(rest[1]), int(rest[2])
        seconds = (int(rest[11]) + int(rest[12])) / _CLOCK_TICKS
        if pgrp == api_pgid:
            api += seconds
        elif int(entry.name) == postmaster or ppid == postmaster:
            pg += seconds
    busy, total = _machine_times()
    return CpuSnapshot(api, pg, time.process_time(), busy, total)


# ---------------------------------------------------------------------------------------------
# Requests


@dataclass
class Recorder:
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    requests: int = 0
    page_sizes: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    async def send(
        self,
        client: httpx.AsyncClient,
        label: str | None,
        method: str,
        path: str,
        token: str,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        started = time.perf_counter()
        response = await client.request(
            method, path, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        elapsed = time.perf_counter() - started
        self.requests += 1
        if label is not None:
            if response.is_success:
                self.samples[label].append(elapsed)
            else:
                self.errors[label].append(f"{response.status_code} {response.text[:200]}")
        return response


Task = Callable[[httpx.AsyncClient, Recorder], Awaitable[None]]


@dataclass
class Workload:
    """The users, videos and tokens requests are made with."""

    user_ids: list[uuid.UUID]
    heavy_followers: list[uuid.UUID]
    typical_followers: list[uuid.UUID]
    quiet_followers: list[uuid.UUID]
    video_ids: list[uuid.UUID]
    video_p: FloatArray
    settings: Settings
    rng: random.Random
    tokens: dict[uuid.UUID, str] = field(default_factory=dict)

    def token(self, user_id: uuid.UUID) -> str:
        if user_id not in self.tokens:
            self.tokens[user_id] = create_access_token(self.settings, user_id).token
        return self.tokens[user_id]


async def load_workload(url: str, seed: int) -> Workload:
    conn = await asyncpg.connect(url)
    try:
        users = [row["id"] for row in await conn.fetch("SELECT id FROM users ORDER BY id")]
        counts = await conn.fetch(
            "SELECT follower_id, count(*) AS n FROM follows GROUP BY follower_id ORDER BY 2 DESC"
        )
        videos = await conn.fetch("SELECT id, like_count FROM videos ORDER BY id")
        quiet_rows = await conn.fetch(
            """
            SELECT f.follower_id
            FROM follows f LEFT JOIN (SELECT DISTINCT user_id FROM videos) AS creators
                 ON creators.user_id = f.followee_id
            GROUP BY f.follower_id HAVING count(creators.user_id) = 0
            ORDER BY f.follower_id
            """
        )
    finally:
        await conn.close()
    n_follows = [int(row["n"]) for row in counts]
    median = n_follows[len(n_follows) // 2]
    heavy_cut = max(n_follows[max(0, len(n_follows) // 100 - 1)], 2 * median)
    heavy = [row["follower_id"] for row in counts if row["n"] >= heavy_cut]
    quiet = [row["follower_id"] for row in quiet_rows]
    quiet_set = set(quiet)
    typical = [
        row["follower_id"]
        for row in counts
        if 0.8 * median <= row["n"] <= 1.2 * median and row["follower_id"] not in quiet_set
    ]
    likes = np.array([float(row["like_count"]) for row in videos])
    settings = Settings.model_validate(
        {
            "database_url": url,
            "jwt_secret": JWT_SECRET,
            "access_token_ttl_seconds": TOKEN_TTL_SECONDS,
        }
    )
    return Workload(
        user_ids=users,
        heavy_followers=heavy or users[:10],
        typical_followers=typical or users[:10],
        quiet_followers=quiet or users[:10],
        video_ids=[row["id"] for row in videos],
        video_p=_normalized(likes + 1.0),
        settings=settings,
        rng=random.Random(seed),
    )


def _items(response: httpx.Response) -> tuple[int, str | None]:
    body = response.json()
    cursor = body.get("next_cursor")
    return len(body.get("items", [])), cursor if isinstance(cursor, str) else None


def first_page_tasks(work: Workload, path: str, users: list[uuid.UUID], n: int) -> list[Task]:
    def task(user: uuid.UUID) -> Task:
        async def run(client: httpx.AsyncClient, rec: Recorder) -> None:
            response = await rec.send(client, "first", "GET", path, work.token(user))
            if response.is_success:
                rec.page_sizes["first"].append(_items(response)[0])

        return run

    return [task(work.rng.choice(users)) for _ in range(n)]


def deep_page_tasks(
    work: Workload, path: str, users: list[uuid.UUID], n: int, pages: int
) -> list[Task]:
    """Cursor walks: page 1 (untimed), then up to `pages - 1` timed pages by next_cursor."""

    def task(user: uuid.UUID, timed: int) -> Task:
        async def run(client: httpx.AsyncClient, rec: Recorder) -> None:
            token = work.token(user)
            response = await rec.send(client, None, "GET", path, token)
            response.raise_for_status()
            _, cursor = _items(response)
            for _ in range(timed):
                if cursor is None:
                    return
                response = await rec.send(client, "deep", "GET", path, token, {"cursor": cursor})
                if not response.is_success:
                    return
                size, cursor = _items(response)
                rec.page_sizes["deep"].append(size)

        return run

    per_walk = pages - 1
    walks = [per_walk] * (n // per_walk) + ([n % per_walk] if n % per_walk else [])
    return [task(work.rng.choice(users), timed) for timed in walks]


async def like_pairs(url: str, work: Workload, n: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """`n` distinct (user, video) pairs not liked yet, videos drawn by popularity."""
    np_rng = np.random.default_rng(work.rng.randrange(2**32))
    draw = n * 2 + 50
    users = [work.user_ids[i] for i in np_rng.integers(0, len(work.user_ids), draw).tolist()]
    videos = [
        work.video_ids[i]
        for i in np_rng.choice(len(work.video_ids), size=draw, p=work.video_p).tolist()
    ]
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """
            SELECT DISTINCT ON (u, v) u, v, ord
            FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS p(u, v, ord)
            WHERE NOT EXISTS (SELECT 1 FROM likes l WHERE l.user_id = p.u AND l.video_id = p.v)
            """,
            users,
            videos,
        )
    finally:
        await conn.close()
    pairs = [(row["u"], row["v"]) for row in sorted(rows, key=lambda r: r["ord"])]
    return pairs[:n]


def like_tasks(work: Workload, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> list[Task]:
    """Like, then unlike (so a run leaves the data as it found it)."""

    def task(user: uuid.UUID, video: uuid.UUID) -> Task:
        async def run(client: httpx.AsyncClient, rec: Recorder) -> None:
            token = work.token(user)
            await rec.send(client, "like", "PUT", f"/videos/{video}/like", token)
            await rec.send(client, "unlike", "DELETE", f"/videos/{video}/like", token)

        return run

    return [task(user, video) for user, video in pairs]


# ---------------------------------------------------------------------------------------------
# Phases and statistics


@dataclass
class Row:
    operation: str
    concurrency: int
    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    requests_per_second: float
    errors: int
    items_per_page: float | None
    api_cpu_ms_per_request: float
    postgres_cpu_ms_per_request: float
    client_cpu_ms_per_request: float
    other_cpu_share: float
    api_gc_pauses: int
    api_gc_max_ms: float
    error_samples: list[str] = field(default_factory=list)


def _percentile(sorted_ms: list[float], pct: float) -> float:
    """Nearest rank: the smallest sample at or above pct% of them."""
    if not sorted_ms:
        return float("nan")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_ms)))
    return sorted_ms[rank - 1]


@dataclass
class Phase:
    name: str
    tasks: list[Task]
    labels: dict[str, str]  # recorder label -> operation name in the report


@dataclass(frozen=True)
class Probes:
    """Where CPU and GC are read: the api's process group, the postmaster, the GC log."""

    api_pgid: int
    postmaster: int
    gc_file: Path


async def run_phase(
    client: httpx.AsyncClient,
    phase: Phase,
    concurrency: int,
    probes: Probes,
    record: bool = True,
) -> list[Row]:
    rec = Recorder()
    queue = deque(phase.tasks)

    async def worker() -> None:
        while queue:
            await queue.popleft()(client, rec)

    before = cpu_snapshot(probes.api_pgid, probes.postmaster)
    wall_started = time.time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    after = cpu_snapshot(probes.api_pgid, probes.postmaster)
    if not record:
        return []
    await asyncio.sleep(0.05)  # the api's GC log is line-buffered; let the last line land
    pauses = gc_pauses(probes.gc_file, wall_started, time.time())
    total = max(rec.requests, 1)
    api = after.api - before.api
    pg = after.postgres - before.postgres
    own = after.client - before.client
    busy = after.machine_busy - before.machine_busy
    capacity = after.machine_total - before.machine_total
    other = max(0.0, busy - api - pg - own) / capacity if capacity > 0 else 0.0
    rows = []
    for label, operation in phase.labels.items():
        ms = sorted(s * 1000.0 for s in rec.samples.get(label, []))
        errors = rec.errors.get(label, [])
        sizes = rec.page_sizes.get(label)
        rows.append(
            Row(
                operation=operation,
                concurrency=concurrency,
                n=len(ms),
                p50_ms=_percentile(ms, 50),
                p95_ms=_percentile(ms, 95),
                p99_ms=_percentile(ms, 99),
                max_ms=ms[-1] if ms else float("nan"),
                mean_ms=sum(ms) / len(ms) if ms else float("nan"),
                requests_per_second=rec.requests / wall,
                errors=len(errors),
                items_per_page=round(sum(sizes) / len(sizes), 1) if sizes else None,
                api_cpu_ms_per_request=1000.0 * api / total,
                postgres_cpu_ms_per_request=1000.0 * pg / total,
                client_cpu_ms_per_request=1000.0 * own / total,
                other_cpu_share=other,
                api_gc_pauses=len(pauses),
                api_gc_max_ms=max(pauses, default=0.0),
                error_samples=errors[:3],
            )
        )
    return rows


async def measure(
    services: Services, opts: Options, work: Workload
) -> tuple[list[Row], list[dict[str, Any]], str, float, int]:
    """Warm up, then every phase sequentially and at opts.concurrency.

    Returns the rows, the top statements (pg_stat_statements), the plans (slow statements and
    traced requests), the latency of one real login (argon2, checks the seeded password hash)
    and the number of statements slower than SLOW_STATEMENT_MS.
    """
    assert services.api is not None and services.postgres is not None
    pids = Probes(services.api.pid, services.postgres.process.pid, services.gc_file)
    n = opts.requests
    limits = httpx.Limits(max_connections=opts.concurrency + 2, max_keepalive_connections=16)
    async with httpx.AsyncClient(
        base_url=services.api_url, timeout=60.0, limits=limits, trust_env=False
    ) as client:
        login_started = time.perf_counter()
        login = await client.post(
            "/auth/token", data={"username": "bench_user_0", "password": BENCH_PASSWORD}
        )
        login_ms = (time.perf_counter() - login_started) * 1000.0
        if login.status_code != 200:
            raise SystemExit(f"bench: login with the seeded password failed: {login.text}")

        def phases(count: int, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> list[Phase]:
            users = work.user_ids
            return [
                Phase(
                    "feed first",
                    first_page_tasks(work, "/feed", users, count),
                    {"first": "GET /feed, first page"},
                ),
                Phase(
                    "feed deep",
                    deep_page_tasks(work, "/feed", users, count, opts.deep_pages),
                    {"deep": f"GET /feed, pages 2-{opts.deep_pages} (next_cursor)"},
                ),
                Phase(
                    "following heavy first",
                    first_page_tasks(work, "/feed/following", work.heavy_followers, count),
                    {"first": "GET /feed/following, first page, heavy followers"},
                ),
                Phase(
                    "following heavy deep",
                    deep_page_tasks(
                        work, "/feed/following", work.heavy_followers, count, opts.deep_pages
                    ),
                    {"deep": f"GET /feed/following, pages 2-{opts.deep_pages}, heavy followers"},
                ),
                Phase(
                    "following typical first",
                    first_page_tasks(work, "/feed/following", work.typical_followers, count),
                    {"first": "GET /feed/following, first page, typical followers"},
                ),
                Phase(
                    "following quiet first",
                    first_page_tasks(work, "/feed/following", work.quiet_followers, count),
                    {"first": "GET /feed/following, first page, followees never publish"},
                ),
                Phase(
                    "like unlike",
                    like_tasks(work, pairs),
                    {"like": "PUT /videos/{id}/like", "unlike": "DELETE /videos/{id}/like"},
                ),
            ]

        url = services.database_url
        # The workload's ~10^5 long-lived objects out of the collector's way: a full collection
        # of them in this process would stall every request in flight and count as latency.
        gc.collect()
        gc.freeze()
        print(f"measure: warm-up ({opts.warmup} requests per operation) ...", flush=True)
        for phase in phases(opts.warmup, await like_pairs(url, work, opts.warmup)):
            await run_phase(client, phase, 1, pids, record=False)
        await _reset_statement_stats(url)
        assert services.postgres is not None
        log = services.postgres.process.log_path
        log_offset = log.stat().st_size
        rows: list[Row] = []
        for concurrency in sorted({1, opts.concurrency}):
            pairs = await like_pairs(url, work, n)
            for phase in phases(n, pairs):
                print(f"measure: {phase.name}, concurrency {concurrency} ...", flush=True)
                phase_rows = await run_phase(client, phase, concurrency, pids)
                for row in phase_rows:
                    print("   " + _row_text(row), flush=True)
                rows.extend(phase_rows)
        statements = await _top_statements(url)
        with log.open("rb") as handle:
            handle.seek(log_offset)
            slow = _auto_explain_blocks(handle.read().decode(errors="replace"))
        slow_count = slow.count(" plan:")
        plans = (
            f"===== Statements slower than {SLOW_STATEMENT_MS} ms during the timed phases: "
            f"{slow_count} (plans without ANALYZE) =====\n{slow}\n"
        )
        if opts.explain:
            print("explain: one traced request of each kind (auto_explain) ...", flush=True)
            plans += await _traced_plans(services, client, work, pids)
    return rows, statements, plans, login_ms, slow_count


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


def _row_text(row: Row) -> str:
    return (
        f"{row.operation} [c={row.concurrency}]: n={row.n} p50={row.p50_ms:.1f} "
        f"p95={row.p95_ms:.1f} p99={row.p99_ms:.1f} max={row.max_ms:.1f} ms, "
        f"{row.requests_per_second:.0f} req/s, errors={row.errors}, "
        f"api full GCs={row.api_gc_pauses} (max {row.api_gc_max_ms:.0f} ms)"
    )


async def _reset_statement_stats(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


async def _top_statements(url: str, limit: int = 12) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
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
    finally:
        await conn.close()
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


async def _traced_plans(
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
    previous = await _alter_system(url, traced)
    sections = []
    try:
        await asyncio.sleep(0.5)  # the api's backends take the new settings at their next query
        requests = [
            ("GET /feed, first page", first_page_tasks(work, "/feed", work.user_ids, 1)),
            ("GET /feed, page 2", deep_page_tasks(work, "/feed", work.user_ids, 1, 2)),
            (
                "GET /feed/following, first page, heavy follower",
                first_page_tasks(work, "/feed/following", work.heavy_followers, 1),
            ),
            (
                "GET /feed/following, page 2, heavy follower",
                deep_page_tasks(work, "/feed/following", work.heavy_followers, 1, 2),
            ),
            (
                "GET /feed/following, first page, typical follower",
                first_page_tasks(work, "/feed/following", work.typical_followers, 1),
            ),
            (
                "GET /feed/following, first page, follower whose followees never publish",
                first_page_tasks(work, "/feed/following", work.quiet_followers, 1),
            ),
            ("PUT + DELETE /videos/{id}/like", like_tasks(work, await like_pairs(url, work, 1))),
        ]
        for title, tasks in requests:
            offset = log.stat().st_size
            await run_phase(client, Phase(title, tasks, {}), 1, pids, record=False)
            await asyncio.sleep(0.3)
            with log.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
            sections.append(f"===== {title} =====\n{_auto_explain_blocks(text)}")
    finally:
        await _alter_system(url, previous)
    return "\n".join(sections)


def _auto_explain_blocks(log_text: str) -> str:
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


# ---------------------------------------------------------------------------------------------
# Report


def _machine() -> dict[str, Any]:
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


async def _pg_settings(url: str) -> dict[str, str]:
    names = [
        "server_version",
        "shared_buffers",
        "work_mem",
        "effective_cache_size",
        "random_page_cost",
        "jit",
        "max_connections",
    ]
    conn = await asyncpg.connect(url)
    try:
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in names}
    finally:
        await conn.close()


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
    return written


# ---------------------------------------------------------------------------------------------
# The api process: genvid_api.main:create_app, plus a probe of its garbage collector


GC_FILE_ENV = "GENVID_BENCH_GC_FILE"


def create_bench_app() -> Any:
    """`genvid_api.main:create_app()` unchanged, plus a probe of the api's garbage collector.

    The duration of every full (generation 2) garbage collection is appended to the file named
    by GENVID_BENCH_GC_FILE: a collection stops the event loop and every request in flight
    waits for it, which is what p99 at concurrency 4 shows.
    """
    from genvid_api.main import create_app  # only in the api process

    gc_file = os.environ.get(GC_FILE_ENV)
    if gc_file:
        log = Path(gc_file).open("a", buffering=1)  # noqa: SIM115  (open for the process's life)
        started: list[float] = []

        def probe(phase: str, info: dict[str, int]) -> None:
            if info.get("generation") != 2:
                return
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                log.write(f"{time.time():.3f} {1000 * (time.perf_counter() - started[0]):.2f}\n")

        gc.callbacks.append(probe)
    return create_app()


def gc_pauses(path: Path, since: float, until: float) -> list[float]:
    """The api's full-collection pauses (ms) between two wall-clock times."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    pauses = []
    for line in lines:
        when, _, ms = line.partition(" ")
        with contextlib.suppress(ValueError):
            if since <= float(when) <= until:
                pauses.append(float(ms))
    return pauses


# ---------------------------------------------------------------------------------------------
# Main


def _marker_doc(opts: Options) -> str:
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


async def _reset_schema(url: str) -> None:
    """Empty a kept database whose seed is out of date (new sizes, generator or migrations)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE")
        await conn.execute("CREATE SCHEMA public")
    finally:
        await conn.close()


def _interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(opts: Options) -> int:
    load_before = [round(x, 2) for x in os.getloadavg()]
    if opts.state_dir is not None:
        root = opts.state_dir
        root.mkdir(parents=True, exist_ok=True)
        keep = True
    else:
        root = Path(tempfile.mkdtemp(prefix="genvid-bench-"))
        keep = False
    # PostgreSQL runs as `nobody` when we are root: it must be able to reach its folder.
    root.chmod(0o755)
    services = Services(root=root)
    failed = True
    try:
        started = time.perf_counter()
        print(f"bench: {opts.mode} {asdict(opts.sizes)}; state in {root}", flush=True)
        services.start_postgres(opts.pg_settings)
        services.start_nats()
        marker = root / SEED_MARKER
        marker_doc = _marker_doc(opts)
        reuse = keep and marker.exists() and marker.read_text() == marker_doc
        if keep and not reuse:
            marker.unlink(missing_ok=True)
            asyncio.run(_reset_schema(services.database_url))
        services.migrate()
        print(f"bench: PostgreSQL and NATS up, migrated ({time.perf_counter() - started:.0f}s)")
        seeded = asyncio.run(seed(services.database_url, opts, reuse))
        if keep:
            marker.write_text(marker_doc)
        print(
            f"bench: seeded in {seeded.total_seconds:.0f}s, "
            f"database {seeded.database_bytes / 2**20:,.0f} MiB",
            flush=True,
        )
        services.start_api()
        work = asyncio.run(load_workload(services.database_url, opts.seed))
        rows, statements, plans, login_ms, slow_count = asyncio.run(measure(services, opts, work))
        all_visible_after = asyncio.run(_all_visible_share_at(services.database_url))
        doc: dict[str, Any] = {
            "mode": opts.mode,
            "sizes": asdict(opts.sizes),
            "requests_per_operation": opts.requests,
            "concurrency": opts.concurrency,
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": _machine(),
            "load_before": load_before,
            "postgres": asyncio.run(_pg_settings(services.database_url)),
            "pg_settings_overridden": opts.pg_settings,
            "seed": asdict(seeded),
            "login_ms": login_ms,
            "slow_statements": slow_count,
            "all_visible_after": all_visible_after,
            "heavy_followers": len(work.heavy_followers),
            "typical_followers": len(work.typical_followers),
            "quiet_followers": len(work.quiet_followers),
            "results": [asdict(row) for row in rows],
            "statements": statements,
        }
        written = write_results(doc, plans)
        print()
        print(markdown(doc))
        print("bench: wrote " + ", ".join(str(p.relative_to(REPO)) for p in written))
        failed = False
        return 0
    except StartupError as error:  # its message has the log's tail
        print(f"bench: failed: {error}", file=sys.stderr)
        return 1
    except (httpx.HTTPError, asyncpg.PostgresError) as error:
        print(f"bench: failed: {error!r}\n{services.log_tails()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        services.stop()
        if not keep:
            if failed:
                logs = Path(tempfile.gettempdir()) / f"{root.name}-logs"
                with contextlib.suppress(OSError):
                    shutil.copytree(root / "logs", logs)
                    print(f"bench: logs kept in {logs}", file=sys.stderr)
            shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    return run(opts)


if __name__ == "__main__":
    sys.exit(main())
