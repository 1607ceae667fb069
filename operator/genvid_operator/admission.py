"""Admission under the concurrency caps: the one place that lets a generation have its Job.

Postgres is the source of truth, not memory, so a restarted operator (or a second one by
mistake) never admits past a cap: a pass takes a transaction-scoped advisory lock, counts the
admitted and unsettled rows (`admitted_at` set, `settled_at` not: settling is finishing),
picks waiting rows in fair order, sets their `admitted_at` and writes every other waiting row's
`queue_position`. The reconcile of a waiting generation runs a pass before it gives up; a pass
also runs after every finish and on a short timer, and the generations it admits are kicked. A
row past its deadline (`deadline_at`) waits no more: it is never admitted, and the timer kicks
it so that its reconcile ends it (DeadlineExceeded) now rather than at its next resync.

A generation whose VideoGeneration vanishes before it finished (deleted while the operator
ran, or while none watched) ends CANCELED with reason `ResourceDeleted`: one transition
written to its row with the next `event_seq`, settled in the same transaction as a cancel
would be, and handed back as an event for the caller to publish (Postgres first, as every
transition; the api's SSE falls back to the row if the publication is lost).

Fair order: a waiting row's key is its owner's admitted count plus its rank among the owner's
waiting rows, then its queued time; so one user's fifty waiting generations take turns with
another user's one instead of all going first (FIFO across users, round-robin within).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time

import asyncpg

from genvid_contracts.events import TransitionEvent
from genvid_contracts.pricing import charge_micros, usd_text
from genvid_contracts.status import TERMINAL_STATUSES, GenerationStatus
from genvid_operator import metrics
from genvid_operator.phases import ADMITTED, Admission

# Any constant both passes agree on: pg_advisory_xact_lock(key) serializes them.
_LOCK_KEY = 0x67656E766964  # "genvid"

_ACTIVE = """
SELECT user_id, count(*) AS active FROM video_generation_jobs
 WHERE admitted_at IS NOT NULL AND settled_at IS NULL
 GROUP BY user_id
"""
_WAITING = """
SELECT id, user_id, created_at, queue_position FROM video_generation_jobs
 WHERE status = 'QUEUED' AND admitted_at IS NULL AND settled_at IS NULL
   AND NOT cancel_requested AND (deadline_at IS NULL OR deadline_at > now())
 ORDER BY created_at, id
"""
# Waiting past their deadline: never admitted, and ended by a pass over each (DeadlineExceeded).
_OVERDUE = """
SELECT id FROM video_generation_jobs
 WHERE status = 'QUEUED' AND admitted_at IS NULL AND settled_at IS NULL
   AND resource_created AND deadline_at <= now()
"""
_ADMIT = """
UPDATE video_generation_jobs SET admitted_at = now(), queue_position = NULL
 WHERE id = ANY($1::uuid[])
RETURNING id, extract(epoch FROM admitted_at - created_at) AS waited
"""
_POSITION = """
UPDATE video_generation_jobs AS j SET queue_position = p.position
  FROM unnest($1::uuid[], $2::int[]) AS p(id, position)
 WHERE j.id = p.id AND j.queue_position IS DISTINCT FROM p.position
"""
_ROW = "SELECT admitted_at, queue_position, settled_at FROM video_generation_jobs WHERE id = $1"
_UNSETTLED_FINISHED = """
SELECT id, status, cost_usd, started_at, reserved_micros FROM video_generation_jobs
 WHERE settled_at IS NULL AND status IN ('SUCCEEDED', 'FAILED', 'CANCELED', 'REJECTED')
 ORDER BY updated_at LIMIT 100
"""
_UNSETTLED = """
SELECT status, cost_usd, started_at, reserved_micros FROM video_generation_jobs
 WHERE id = $1 AND settled_at IS NULL
 FOR UPDATE
"""
# Rows whose resource the api created and that are not finished: candidates for "vanished"
# when their VideoGeneration is gone (deleted while no operator watched). The grace keeps a
# resource that is being created out of it.
_CREATED_UNFINISHED = """
SELECT id FROM video_generation_jobs
 WHERE settled_at IS NULL AND resource_created AND status IN ('QUEUED', 'RUNNING')
   AND updated_at < now() - make_interval(secs => $1)
 ORDER BY updated_at LIMIT 500
"""
# The unfinished row of a vanished generation ends CANCELED, one transition further.
_VANISH = """
UPDATE video_generation_jobs SET
    status = $2, reason = $3, message = $4, finished_at = now(), queue_position = NULL,
    event_seq = event_seq + 1, updated_at = now()
 WHERE id = $1
RETURNING *
"""
_SETTLE = "SELECT genvid_settle_generation($1, $2)"
RESOURCE_DELETED = "ResourceDeleted"
_DELETED_MESSAGE = "Its VideoGeneration was deleted before it finished."
_RESERVED = "SELECT coalesce(sum(reserved_micros), 0) FROM budget_usage WHERE scope = 'global'"
_SPENT = """
SELECT spent_micros, period_start FROM budget_usage WHERE scope = 'global'
 ORDER BY period_start DESC LIMIT 1
"""


@dataclass(frozen=True)
class Waiting:
    id: uuid.UUID
    user_id: uuid.UUID
    queued_at: datetime


@dataclass(frozen=True)
class Plan:
    admit: list[uuid.UUID]
    positions: dict[uuid.UUID, int]


def plan(
    active: Mapping[uuid.UUID, int],
    waiting: Iterable[Waiting],
    global_cap: int,
    user_cap: int,
) -> Plan:
    """Which waiting rows to admit and the place in line of the others (pure)."""
    ranks: Counter[uuid.UUID] = Counter()
    keyed = []
    for row in sorted(waiting, key=lambda row: (row.queued_at, row.id)):
        ranks[row.user_id] += 1
        keyed.append((active.get(row.user_id, 0) + ranks[row.user_id], row.queued_at, row))
    keyed.sort(key=lambda item: (item[0], item[1], item[2].id))
    running = Counter(active)
    free = global_cap - sum(active.values())
    admit: list[uuid.UUID] = []
    positions: dict[uuid.UUID, int] = {}
    for _, _, row in keyed:
        if free > 0 and running[row.user_id] < user_cap:
            admit.append(row.id)
            running[row.user_id] += 1
            free -= 1
        else:
            positions[row.id] = len(positions) + 1
    return Plan(admit, positions)


async def settle(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
    job_id: uuid.UUID,
    row: asyncpg.Record,
) -> int | None:
    """Settle the row once (genvid_settle_generation) at what its terminal status is charged
    (see genvid_contracts.pricing); the micro-USD charged, None if it was settled already."""
    charged = charge_micros(
        row["status"],
        row["cost_usd"],
        started=row["started_at"] is not None,
        estimate_micros=int(row["reserved_micros"]),
    )
    if not await connection.fetchval(_SETTLE, job_id, charged):
        return None
    metrics.SETTLED_USD.inc(charged / 1_000_000)
    return charged


class Admissions:
    def __init__(self, pool: asyncpg.Pool, global_cap: int, user_cap: int) -> None:
        self._pool = pool
        self._global_cap = global_cap
        self._user_cap = user_cap
        metrics.ADMISSION_MAX_ACTIVE.labels(scope="global").set(global_cap)
        metrics.ADMISSION_MAX_ACTIVE.labels(scope="user").set(user_cap)

    async def admit(self) -> list[str]:
        """One admission pass; the names (job ids) of the generations it admitted."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            active = {row["user_id"]: int(row["active"]) for row in await connection.fetch(_ACTIVE)}
            rows = await connection.fetch(_WAITING)
            waiting = [Waiting(row["id"], row["user_id"], row["created_at"]) for row in rows]
            decided = plan(active, waiting, self._global_cap, self._user_cap)
            admitted = await connection.fetch(_ADMIT, decided.admit) if decided.admit else []
            if decided.positions:
                await connection.execute(
                    _POSITION, list(decided.positions), list(decided.positions.values())
                )
        metrics.ADMISSION_ACTIVE.set(sum(active.values()) + len(admitted))
        metrics.ADMISSION_WAITING.set(len(decided.positions))
        running = Counter(active)
        running.update(row.user_id for row in waiting if row.id in set(decided.admit))
        metrics.observe_waiting(
            running, [row.user_id for row in waiting if row.id in decided.positions], self._user_cap
        )
        metrics.ADMITTED.inc(len(admitted))
        metrics.ADMISSION_PASS_TIME.set_to_current_time()
        for row in admitted:
            metrics.ADMISSION_WAIT.observe(max(float(row["waited"]), 0.0))
        return [str(row["id"]) for row in admitted]

    async def overdue(self) -> list[str]:
        """The waiting generations past their deadline: no pass admits them (a place that frees
        goes to the next in line), and a reconcile of each ends it now rather than at its next
        resync."""
        return [str(row["id"]) for row in await self._pool.fetch(_OVERDUE)]

    async def check(self, name: str) -> tuple[Admission, list[str]]:
        """Whether the generation may have its Job, running a pass if it waits; with the
        names of the others that pass admitted (to kick)."""
        try:
            job_id = uuid.UUID(name)
        except ValueError:
            return ADMITTED, []  # made by hand: no row, no budget, not counted
        row = await self._pool.fetchrow(_ROW, job_id)
        if row is None or row["admitted_at"] is not None:
            return ADMITTED, []
        if row["settled_at"] is not None:
            # Settled before it ever ran (its resource vanished, say): nothing to admit.
            return Admission(admitted=False), []
        others = await self.admit()
        if name in others:
            return ADMITTED, [other for other in others if other != name]
        row = await self._pool.fetchrow(_ROW, job_id)
        if row is not None and row["admitted_at"] is not None:
            return ADMITTED, others  # by a concurrent pass (another operator's)
        return Admission(admitted=False, position=row["queue_position"] if row else None), others

    async def release_vanished(self, name: str) -> TransitionEvent | None:
        """The generation's resource is gone: an unfinished row ends CANCELED
        (`ResourceDeleted`) and is settled as a cancel is (nothing charged unless a worker
        started), so it holds no budget and no place under the caps. Returns the transition to
        publish; None if there was none (no row, or finished already)."""
        try:
            job_id = uuid.UUID(name)
        except ValueError:
            return None
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(_UNSETTLED, job_id)
            if row is None:
                return None
            if row["status"] in TERMINAL_STATUSES:
                await settle(connection, job_id, row)  # its transition was published already
                return None
            row = await connection.fetchrow(
                _VANISH, job_id, GenerationStatus.CANCELED, RESOURCE_DELETED, _DELETED_MESSAGE
            )
            assert row is not None, "locked above"
            charged = await settle(connection, job_id, row)
        return _event(row, charged or 0)

    async def created_unfinished(self, grace_seconds: float) -> list[str]:
        """Names of unfinished generations whose resource was created: those of them missing
        from a list of the resources made after this call vanished unseen."""
        rows = await self._pool.fetch(_CREATED_UNFINISHED, grace_seconds)
        return [str(row["id"]) for row in rows]

    async def reap(self) -> int:
        """Settle finished rows left unsettled (a crash between writes, rows finished by
        hand); returns how many."""
        settled = 0
        async with self._pool.acquire() as connection:
            for row in await connection.fetch(_UNSETTLED_FINISHED):
                settled += await settle(connection, row["id"], row) is not None
            metrics.RESERVED_USD.set(int(await connection.fetchval(_RESERVED)) / 1_000_000)
            spent = await connection.fetchrow(_SPENT)
            if spent is not None:
                metrics.SPENT_USD.set(int(spent["spent_micros"]) / 1_000_000)
                start = datetime.combine(spent["period_start"], time(), UTC)
                metrics.SPENT_PERIOD_START.set(start.timestamp())
        return settled


def _event(row: asyncpg.Record, charged_micros: int) -> TransitionEvent:
    """The transition event of a row the operator ended itself (no resource to take it from)."""

    def time(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(row["id"]),
        "user_id": str(row["user_id"]),
        "status": row["status"],
        "seq": int(row["event_seq"]),
        "reason": row["reason"],
        "message": row["message"],
        "attempts": int(row["attempts"]),
        "updated_at": time(row["updated_at"]),
        "started_at": time(row["started_at"]),
        "finished_at": time(row["finished_at"]),
        "bucket": row["bucket"],
        "object_name": row["object_name"],
        "poster_object": row["poster_object"],
        "size_bytes": row["size_bytes"],
        "duration_seconds": row["video_duration_seconds"],
        "cost_usd": usd_text(charged_micros),
        "queue_position": None,
    }
