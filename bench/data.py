"""The data set: numpy, reproducible from --seed, a few seconds for the full size; and its rows
as the columns COPY takes."""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.config import BUCKET, Sizes

DAY = 86400.0
PUBLISH_SPAN_DAYS = 90.0
HEAVY_FOLLOWER_SHARE = 0.01  # users following ~20x the typical number
HEAVY_FOLLOWER_FACTOR = 20
QUIET_FOLLOWER_SHARE = 0.02  # users who follow only accounts that never publish
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# A table's rows as columns: name -> one value per row, in COPY order.
Columns = dict[str, Sequence[Any]]


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


def normalized(weights: FloatArray) -> FloatArray:
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
    video_owner = rng.choice(n_users, size=n_videos, p=normalized(activity)).astype(np.int64)
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
    followee_p = normalized(videos_of + 1.0)
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
    video_p = normalized(video_weight)
    liker_p = normalized(rng.lognormal(0.0, 1.0, n_users))
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


def _links(created: FloatArray, **ends: tuple[Sequence[uuid.UUID], IntArray]) -> Columns:
    """A link table's rows in creation order: each end's ids picked by index, then created_at."""
    order = np.argsort(created, kind="stable")
    columns: Columns = {name: _pick(ids, index[order]) for name, (ids, index) in ends.items()}
    return {**columns, "created_at": _times(created[order])}


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
    yield (
        "follows",
        _links(
            data.follow_created,
            follower_id=(data.user_ids, data.follow_a),
            followee_id=(data.user_ids, data.follow_b),
        ),
    )
    yield (
        "likes",
        _links(
            data.like_created,
            user_id=(data.user_ids, data.like_user),
            video_id=(data.video_ids, data.like_video),
        ),
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
