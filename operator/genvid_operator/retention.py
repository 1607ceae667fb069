"""Retention of finished VideoGenerations, as Argo's ttlStrategy and Kueue's
objectRetentionPolicies do it: a finished resource is deleted `finished_retention_seconds` after
its status.finishedAt, and only once its final transition is synced (written to Postgres and
published), so the api keeps serving it from Postgres and no transition is lost.

One sweep over a map of the finished resources rather than a kopf timer per object: a timer is
an asyncio task per object and puts kopf's finalizer on it (a PATCH each), so 10,000 finished
resources would cost 10,000 tasks and 10,000 writes at every start-up. Nor a kopf index: kopf
holds every handler until an index is filled, and filling one wakes every waiting object on
each object listed, so with 5,000 resources start-up took minutes (quadratic). Instead an event
handler keeps a plain map of the finished and synced resources (uid, resourceVersion, expiry),
dropping one when it changes otherwise or is deleted, and one loop deletes the expired ones
every `resync_seconds`. Each delete carries the uid and resourceVersion last seen as
preconditions, so only the version judged due is deleted; one that changed since waits for its
next event.

The DELETED event then goes through `Context.vanished`, which leaves a finished row as it is and
forgets the generation's reconcile lock; kopf forgets its own per-object memory and this map its
entry, so the operator's memory follows the resources that exist, not those ever seen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from genvid_contracts.resource import GROUP, PLURAL, VERSION, VideoGenerationStatus
from genvid_contracts.status import TERMINAL_STATUSES
from genvid_contracts.tasks import stop
from genvid_operator import metrics
from genvid_operator.cluster import Cluster
from genvid_operator.config import Settings
from genvid_operator.reconcile import unsynced

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Expiring:
    """A finished and synced VideoGeneration, as its last event showed it."""

    uid: str
    resource_version: str
    expires_at: dt.datetime


def expires_at(status: Mapping[str, Any], retention: dt.timedelta) -> dt.datetime | None:
    """When the generation may be deleted; None while it may not be (unfinished, its final
    transition not synced yet, or no finishedAt to count from)."""
    typed = cast(VideoGenerationStatus, status)
    finished = typed.get("finishedAt")
    if typed.get("phase") not in TERMINAL_STATUSES or unsynced(typed) or not finished:
        return None
    return dt.datetime.fromisoformat(finished) + retention


def due(status: Mapping[str, Any], now: dt.datetime, retention: dt.timedelta) -> bool:
    """Past its retention: finished, synced, and finished at least `retention` ago."""
    expiry = expires_at(status, retention)
    return expiry is not None and now >= expiry


def expired(
    entries: Iterable[tuple[str, Expiring]], now: dt.datetime
) -> list[tuple[str, Expiring]]:
    """The generations whose retention is over, oldest first."""
    return sorted(
        ((name, entry) for name, entry in entries if now >= entry.expires_at),
        key=lambda item: item[1].expires_at,
    )


class Finished(dict[str, Expiring]):
    """The finished and synced resources by name, kept from the watch events."""

    def observe(
        self,
        event: str,
        name: str,
        status: Mapping[str, Any],
        meta: kopf.Meta,
        retention: dt.timedelta,
    ) -> None:
        expiry = expires_at(status, retention)
        if event == "DELETED" or expiry is None or meta.uid is None:
            self.pop(name, None)
        else:
            self[name] = Expiring(meta.uid, meta["resourceVersion"], expiry)


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    retention = dt.timedelta(seconds=settings.finished_retention_seconds)
    finished = Finished()

    async def track(type: str, name: str, status: kopf.Status, meta: kopf.Meta, **_: Any) -> None:
        finished.observe(type, name, status, meta, retention)

    async def startup(memo: kopf.Memo, **_: Any) -> None:
        metrics.TRACKED.labels(structure="finished").set_function(lambda: float(len(finished)))
        metrics.TRACKED.labels(structure="locks").set_function(
            lambda: float(len(memo.ctx.locks)) if hasattr(memo, "ctx") else 0.0
        )
        memo.retention_loop = asyncio.create_task(retention_loop(memo, finished), name="retention")

    kopf.on.event(GROUP, VERSION, PLURAL, id="retention", registry=registry)(track)
    kopf.on.startup(registry=registry, id="retention")(startup)
    kopf.on.cleanup(registry=registry, id="retention")(cleanup)


async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await stop(getattr(memo, "retention_loop", None))


async def retention_loop(memo: kopf.Memo, finished: Finished) -> None:
    """Sweep forever; the context is read at each pass, as the operator's startup makes it."""
    settings: Settings = memo.settings
    while True:
        try:
            if hasattr(memo, "ctx"):
                await sweep(memo.ctx.cluster, settings.namespace, finished)
            metrics.RETENTION_SWEEP_TIME.set_to_current_time()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention sweep failed; retrying")
        await asyncio.sleep(settings.resync_seconds)


async def sweep(cluster: Cluster, namespace: str, finished: Finished) -> int:
    """Delete the finished generations past their retention; returns how many went."""
    deleted = 0
    # A copy: the map changes while the deletions are awaited.
    for name, entry in expired(list(finished.items()), dt.datetime.now(dt.UTC)):
        if await cluster.delete_generation(namespace, name, entry.uid, entry.resource_version):
            metrics.RETENTION_DELETED.inc()
            deleted += 1
        elif finished.get(name) == entry:
            # Gone without a DELETED event seen (a watch gap), or changed: its next event (if
            # any) brings it back.
            del finished[name]
    if deleted:
        log.info("retention: deleted %d finished VideoGeneration(s)", deleted)
    return deleted
