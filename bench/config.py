"""What a run is: its sizes and options, and the constants the modules share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

JWT_SECRET = "bench-secret-" + "k" * 40
BUCKET = "genvid-previews"
BENCH_PASSWORD = "bench-Password-4711"
TOKEN_TTL_SECONDS = 24 * 3600
GENERATOR_VERSION = 2  # part of a kept database's marker: a change re-seeds
FEED_PAGE_P99_GOAL_MS = 50.0
SLOW_STATEMENT_MS = 25  # auto_explain logs the plan (no ANALYZE) of statements slower than this


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
