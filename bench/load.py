"""The load: an httpx client's timed requests, the users and tokens they are made with, and
phases run at a given concurrency with their latency, CPU and GC statistics."""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from bench.config import JWT_SECRET, TOKEN_TTL_SECONDS
from bench.cpu import cpu_snapshot
from bench.data import FloatArray, normalized
from bench.gcprobe import gc_pauses
from bench.services import connection
from genvid_api.config import Settings
from genvid_api.security import create_access_token


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
    async with connection(url) as conn:
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
        video_p=normalized(likes + 1.0),
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
    async with connection(url) as conn:
        rows = await conn.fetch(
            """
            SELECT DISTINCT ON (u, v) u, v, ord
            FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS p(u, v, ord)
            WHERE NOT EXISTS (SELECT 1 FROM likes l WHERE l.user_id = p.u AND l.video_id = p.v)
            """,
            users,
            videos,
        )
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


def phases(
    work: Workload, count: int, deep_pages: int, pairs: list[tuple[uuid.UUID, uuid.UUID]]
) -> list[Phase]:
    """The operations measured, in order: `count` requests of each (cursor walks of
    `deep_pages` pages), and a like and an unlike of each pair."""
    users = work.user_ids
    return [
        Phase(
            "feed first",
            first_page_tasks(work, "/feed", users, count),
            {"first": "GET /feed, first page"},
        ),
        Phase(
            "feed deep",
            deep_page_tasks(work, "/feed", users, count, deep_pages),
            {"deep": f"GET /feed, pages 2-{deep_pages} (next_cursor)"},
        ),
        Phase(
            "following heavy first",
            first_page_tasks(work, "/feed/following", work.heavy_followers, count),
            {"first": "GET /feed/following, first page, heavy followers"},
        ),
        Phase(
            "following heavy deep",
            deep_page_tasks(work, "/feed/following", work.heavy_followers, count, deep_pages),
            {"deep": f"GET /feed/following, pages 2-{deep_pages}, heavy followers"},
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
