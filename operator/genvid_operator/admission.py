"""Admission under the concurrency caps: the one place that lets a generation have its Job.

Postgres is the source of truth, not memory, so a restarted operator (or a second one by
mistake) never admits past a cap: a pass takes a transaction-scoped advisory lock, counts the
admitted and unsettled rows (`admitted_at` set, `settled_at` not: settling is finishing),
picks waiting rows in fair order, sets their `admitted_at` and writes every other waiting row's
`queue_position`. The reconcile of a waiting generation runs a pass before it gives up; a pass
also runs after every finish and on a short timer, and the generations it admits are kicked.

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

from genvid_contracts.pricing import charge_micros
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
   AND NOT cancel_requested
 ORDER BY created_at, id
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
_UNFINISHED = """
SELECT status, cost_usd, started_at, reserved_micros FROM video_generation_jobs
 WHERE id = $1 AND settled_at IS NULL
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
_SETTLE = "SELECT genvid_settle_generation($1, $2)"
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


def settlement(row: asyncpg.Record, status: str | None = None) -> int:
    """What a row is charged when it is settled (see genvid_contracts.pricing), as if its
    status were `status` when given."""
    return charge_micros(
        status or row["status"],
        row["cost_usd"],
        started=row["started_at"] is not None,
        estimate_micros=int(row["reserved_micros"]),
    )


async def settle(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
    job_id: uuid.UUID,
    row: asyncpg.Record,
    status: str | None = None,
) -> bool:
    """Settle the row once (genvid_settle_generation); False if it already was."""
    charged = settlement(row, status)
    settled = bool(await connection.fetchval(_SETTLE, job_id, charged))
    if settled:
        metrics.SETTLED_USD.inc(charged / 1_000_000)
    return settled


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
        return Admission(admitted=False, position=row["queue_position"] if row else None), others

    async def settle_vanished(self, name: str) -> None:
        """The generation's resource is gone: release what it holds (charged as if it had
        been canceled then), so it counts against no budget or cap."""
        try:
            job_id = uuid.UUID(name)
        except ValueError:
            return
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(_UNFINISHED + " FOR UPDATE", job_id)
            if row is None:
                return
            status = row["status"]
            if status not in TERMINAL_STATUSES:
                status = GenerationStatus.CANCELED
            await settle(connection, job_id, row, status)

    async def created_unfinished(self, grace_seconds: float) -> list[str]:
        """Names of unfinished generations whose resource was created (see `reap_vanished`)."""
        rows = await self._pool.fetch(_CREATED_UNFINISHED, grace_seconds)
        return [str(row["id"]) for row in rows]

    async def reap_vanished(self, candidates: list[str], existing: set[str]) -> list[str]:
        """Release what the candidates whose resource no longer exists hold; the rows must be
        read before the resources are listed, so a resource created in between is never
        taken for gone. Returns the names released."""
        vanished = [name for name in candidates if name not in existing]
        for name in vanished:
            await self.settle_vanished(name)
        return vanished

    async def reap(self) -> int:
        """Settle finished rows left unsettled (a crash between writes, rows finished by
        hand); returns how many."""
        settled = 0
        async with self._pool.acquire() as connection:
            for row in await connection.fetch(_UNSETTLED_FINISHED):
                settled += await settle(connection, row["id"], row)
            metrics.RESERVED_USD.set(int(await connection.fetchval(_RESERVED)) / 1_000_000)
            spent = await connection.fetchrow(_SPENT)
            if spent is not None:
                metrics.SPENT_USD.set(int(spent["spent_micros"]) / 1_000_000)
                start = datetime.combine(spent["period_start"], time(), UTC)
                metrics.SPENT_PERIOD_START.set(start.timestamp())
        return settled
