"""One reconcile pass for one VideoGeneration: observe, decide, act, mirror.

Every trigger (the VideoGeneration, its Job or its pods changed, or the periodic resync)
runs the same level-triggered pass, one at a time per object. A transition is first written
to the VideoGeneration's status (with the next eventSeq), then written to Postgres and
published to NATS. A pass never decides a new transition before the current one is synced
(written and published), so an operator killed at any point loses no transition, and both
sinks are idempotent (Postgres keeps the highest eventSeq, NATS is read back before a publish),
so none is published twice.

`status.syncedSeq` records the last transition known to be synced, for an operator that starts
over: a transition at or below it needs no sync. Writing it alone would cost a status patch per
transition (an apiserver write and a watch event of its own), so the operator remembers what it
synced (`Known.synced`) and writes syncedSeq with the next status patch of that generation:
while a generation runs, syncedSeq may be one behind eventSeq. A transition still unsynced on
the resource when a pass starts (the operator restarted, or no later transition yet) is synced
again, which writes and publishes nothing new. A final transition has no next patch, so it gets
its own syncedSeq patch right after its sync: a finished generation is settled (final and
synced) as the retention and a restarted operator expect.

A finished Job is deleted only after its terminal status is synced: the Job is created with a
long TTL (`unsynced_job_ttl_seconds`, a safety net) that is shortened to
`ttl_seconds_after_finished` then, so the TTL controller deletes it and `kubectl describe`
still shows it meanwhile. A Job or pod gone earlier anyway (by hand, an eviction) is not lost:
the worker's result is read from the bucket (`StoredResults`).

A pass costs as few apiserver requests as it can, because dispatch latency is made of them:
the Job and the pods come from kopf's indexes (kept by the watches the operator has anyway),
the VideoGeneration from the event's body or from what the last pass wrote (`Known`). Where an
index may lag (a Job that finished before its pods' final states arrived, a started generation
whose Job is missing), the pass asks the apiserver instead of trusting it. A body that turns out
older than the object is harmless: the status patch carries its resourceVersion, and a Conflict
makes the pass read the object and decide again. The Job is created before the status that
admits it is written (one request less before it exists; its fixed name keeps it one per
generation), and the event a pass's own patch causes is skipped when that pass left nothing to
decide. A settled generation (final, synced, its Job released) is forgotten, so it costs
nothing more until it changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from genvid_contracts.resource import VideoGeneration, VideoGenerationStatus
from genvid_contracts.status import TERMINAL_STATUSES, GenerationStatus
from genvid_operator import kube_events, metrics
from genvid_operator.admission import Admissions
from genvid_operator.cluster import Cluster, Conflict, Json
from genvid_operator.config import Settings
from genvid_operator.jobspec import build_job, price_per_second
from genvid_operator.mirror import GenerationMirror
from genvid_operator.phases import ADMITTED, Admission, Limits, decide, needs_stored_result
from genvid_operator.publish import EventPublisher, event_from
from genvid_operator.results import StoredResults

log = logging.getLogger(__name__)

# The phases whose estimated cost counts as spent.
_CHARGED = frozenset({GenerationStatus.SUCCEEDED, GenerationStatus.FAILED})

# A pass follows at most this many transitions in a row (QUEUED -> RUNNING -> SUCCEEDED).
_MAX_STEPS = 4

# kopf's indexes of Jobs and pods by generation name (`handlers.register`): live mappings.
ChildIndex = Mapping[str, Collection[Json]]


@dataclass
class Known:
    """What the passes of one unsettled generation have seen: the resourceVersions they read
    or wrote, and the newest body among them. A body whose version is here is no newer than
    `body`; `done` says the last pass left nothing to decide from it; `synced` is the highest
    eventSeq this process wrote to Postgres and published, which the resource's syncedSeq
    records only with its next status patch."""

    body: VideoGeneration
    versions: set[str] = field(default_factory=set)
    done: bool = False
    synced: int = 0


@dataclass
class Context:
    settings: Settings
    cluster: Cluster
    events: EventPublisher
    mirror: GenerationMirror | None
    # None without a database: no admission control (every generation runs at once).
    admissions: Admissions | None = None
    # None without a bucket: a Job gone before it was read is `JobLost`.
    results: StoredResults | None = None
    locks: defaultdict[tuple[str, str], asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )
    kicked: set[asyncio.Task[None]] = field(default_factory=set)
    jobs: ChildIndex = field(default_factory=dict)
    pods: ChildIndex = field(default_factory=dict)
    known: dict[tuple[str, str], Known] = field(default_factory=dict)

    def limits(self, model: str) -> Limits:
        return Limits(
            price_usd_per_second=price_per_second(self.settings, model),
            max_cost_usd=self.settings.max_cost_per_generation_usd,
            max_retries=self.settings.max_retries,
            active_deadline_seconds=self.settings.active_deadline_seconds,
        )

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is kept of a generation gone or settled: memory does not grow with the
        generations that ever existed."""
        self.known.pop((namespace, name), None)
        self.locks.pop((namespace, name), None)

    def job(self, name: str) -> Json | None:
        return next(iter(self.jobs.get(name, ())), None)

    def seen(self, vg: VideoGeneration) -> None:
        """`vg` is the newest version a pass has: read, written, or from an event."""
        meta = vg["metadata"]
        known = self.known.get((meta["namespace"], meta["name"]))
        if known is None:
            known = self.known[(meta["namespace"], meta["name"])] = Known(body=vg)
        known.body, known.done = vg, False
        known.versions.add(meta["resourceVersion"])

    def current(
        self, namespace: str, name: str, body: VideoGeneration | None
    ) -> VideoGeneration | None:
        """The newest body at hand without a request: `body` (an event's), unless a pass
        already read or wrote that version and has a newer one. None: read it."""
        known = self.known.get((namespace, name))
        if known is None:
            return body
        if body is None or body["metadata"]["resourceVersion"] in known.versions:
            return known.body
        return body

    def settled_here(self, namespace: str, name: str, body: VideoGeneration) -> bool:
        """Nothing to do for this event: its body is a version a pass already finished with
        (typically the pass's own status patch), or a settled generation with no Job to act
        on (what an operator starting over finished generations sees)."""
        known = self.known.get((namespace, name))
        if known is not None and known.done:
            return body["metadata"]["resourceVersion"] in known.versions
        return known is None and settled(body) and self.job(name) is None

    def kick(self, names: list[str]) -> list[asyncio.Task[None]]:
        """Reconcile the generations an admission pass let in, now rather than at the next
        resync (in the background: the caller may hold one of their locks); their tasks."""
        tasks = []
        for name in names:
            task = asyncio.create_task(_kicked(self, self.settings.namespace, name))
            self.kicked.add(task)
            task.add_done_callback(self.kicked.discard)
            tasks.append(task)
        return tasks

    async def admit(self) -> None:
        """An admission pass, its admitted generations kicked."""
        if self.admissions is not None:
            self.kick(await self.admissions.admit())

    async def vanished(self, names: list[str]) -> None:
        """These generations' resources are gone (a DELETED event, or missing from a list):
        each unfinished one ends CANCELED (`ResourceDeleted`), its transition published, and
        the places it held under the caps go to the next in line."""
        namespace = self.settings.namespace
        for name in names:
            async with self.locks[(namespace, name)]:  # no reconcile of it is half-way
                released = self.admissions and await self.admissions.release_vanished(name)
                if released:
                    log.warning("%s/%s: its resource is gone: canceled", namespace, name)
                    metrics.TRANSITIONS.labels(
                        phase=released["status"], reason=released["reason"] or ""
                    ).inc()
                    await self.events.publish_once(released)
            self.forget(namespace, name)
        if names:
            await self.admit()


async def _kicked(ctx: Context, namespace: str, name: str) -> None:
    try:
        await reconcile(ctx, namespace, name)
    except Exception:
        metrics.RECONCILE_ERRORS.labels(trigger="admission").inc()
        log.exception(
            "%s/%s: reconcile after admission failed (the resync retries)", namespace, name
        )


def unsynced(status: VideoGenerationStatus) -> bool:
    return int(status.get("eventSeq") or 0) > int(status.get("syncedSeq") or 0)


def settled(vg: VideoGeneration) -> bool:
    """Final and synced: no pass will decide anything for it any more."""
    status: VideoGenerationStatus = vg.get("status") or {}
    return status.get("phase") in TERMINAL_STATUSES and not unsynced(status)


async def reconcile(
    ctx: Context, namespace: str, name: str, body: VideoGeneration | None = None
) -> None:
    """One pass; `body` is the VideoGeneration as the triggering event had it, if it did."""
    async with ctx.locks[(namespace, name)]:
        vg = ctx.current(namespace, name, body)
        for _ in range(_MAX_STEPS):
            if vg is None:
                vg = await ctx.cluster.get_generation(namespace, name)
                if vg is None:
                    break
            ctx.seen(vg)
            try:
                vg = await _sync(ctx, vg)
                moved = await _step(ctx, vg)
            except Conflict:
                # Another writer moved it first (a second operator), or the body was older
                # than the object: read it again, decide again.
                metrics.STATUS_CONFLICTS.inc()
                log.info("%s/%s: its status changed meanwhile; reading it again", namespace, name)
                vg = None
                continue
            if moved is None:
                ctx.known[(namespace, name)].done = True
                if not settled(vg) or ctx.job(name) is not None:
                    return
                break
            vg = moved
        else:
            return
    ctx.forget(namespace, name)


async def _children(ctx: Context, vg: VideoGeneration) -> tuple[Json | None, list[Json]]:
    """The generation's Job and pods, from the indexes where they can be trusted."""
    namespace, name = vg["metadata"]["namespace"], vg["metadata"]["name"]
    phase = (vg.get("status") or {}).get("phase")
    job = ctx.job(name)
    if job is None and phase == GenerationStatus.RUNNING:
        # A Job that is missing from the index may be only late there: a started generation
        # would be decided lost (or read from the bucket) on that, so ask.
        job = await ctx.cluster.get_job(namespace, name)
    if job is None:
        return None, []
    if phase not in TERMINAL_STATUSES and _finished(job):
        # The Job may reach the index before its pods' final states: the outcome is read
        # from them once per generation, so read them as they are.
        return job, await ctx.cluster.list_pods(namespace, name)
    return job, list(ctx.pods.get(name, ()))


def _finished(job: Json) -> bool:
    return any(
        condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed")
        for condition in job.get("status", {}).get("conditions") or []
    )


async def _step(ctx: Context, vg: VideoGeneration) -> VideoGeneration | None:
    """Decide and act once; the new body if the status moved (another step may follow)."""
    namespace, name = vg["metadata"]["namespace"], vg["metadata"]["name"]
    job, pods = await _children(ctx, vg)
    admission = await _admission(ctx, vg, job)
    stored = None
    if ctx.results is not None and needs_stored_result(vg, job, pods):
        stored = await ctx.results.read(name)
    decision = decide(
        vg, job, pods, ctx.limits(vg["spec"]["model"]), dt.datetime.now(dt.UTC), admission, stored
    )
    if job is not None and settled(vg):
        await _release_job(ctx, vg, job)

    if decision.delete_job:
        await ctx.cluster.delete_job(namespace, name)
    if decision.create_job:
        # Before the status that admits it: the Job's name is fixed, so a pass repeated after
        # a Conflict finds it (409) and never makes a second one.
        await _create_job(ctx, vg)
    if decision.status is None:
        return None
    old: VideoGenerationStatus = vg.get("status") or {}
    synced = ctx.known[(namespace, name)].synced
    vg = await ctx.cluster.patch_status(vg, with_synced(old, decision.status, synced))
    ctx.seen(vg)
    _observe(vg, old, ctx.settings.prices_usd_per_second)
    return await _sync(ctx, vg, fresh=True)


async def _release_job(ctx: Context, vg: VideoGeneration, job: dict[str, Any]) -> None:
    """The terminal status is recorded everywhere: the Job may go after the usual TTL."""
    ttl = ctx.settings.ttl_seconds_after_finished
    if job.get("spec", {}).get("ttlSecondsAfterFinished") != ttl:
        await ctx.cluster.set_job_ttl(vg["metadata"]["namespace"], vg["metadata"]["name"], ttl)


async def _admission(ctx: Context, vg: VideoGeneration, job: dict[str, Any] | None) -> Admission:
    """Ask Postgres only for a generation that waits for its Job and was never admitted."""
    status = vg.get("status") or {}
    waits = status.get("phase") in (None, GenerationStatus.QUEUED) and not status.get("admittedAt")
    if ctx.admissions is None or job is not None or vg["spec"].get("cancel") or not waits:
        return ADMITTED
    admission, others = await ctx.admissions.check(vg["metadata"]["name"])
    ctx.kick(others)
    return admission


async def _create_job(ctx: Context, vg: VideoGeneration) -> None:
    price = price_per_second(ctx.settings, vg["spec"]["model"])
    assert price is not None, "decide() rejects unknown models"
    if await ctx.cluster.create_job(build_job(vg, ctx.settings, price)):
        metrics.JOBS_CREATED.inc()


def with_synced(
    old: VideoGenerationStatus, new: VideoGenerationStatus, synced: int
) -> VideoGenerationStatus:
    """`new` carrying syncedSeq up to `synced`, the transition a pass synced without writing
    it down; never beyond `old`'s eventSeq (a newer transition is not synced yet)."""
    seq = min(synced, int(old.get("eventSeq") or 0))
    if seq <= int(new.get("syncedSeq") or 0):
        return new
    return {**new, "syncedSeq": seq}


async def _sync(ctx: Context, vg: VideoGeneration, *, fresh: bool = False) -> VideoGeneration:
    """Publish and mirror the current transition if that has not happened yet; record it as
    synced on the resource now only if it is final (otherwise the next status patch does).
    `fresh`: the pass has just written it, so no earlier process can have published it."""
    status: VideoGenerationStatus = vg.get("status") or {}
    if not unsynced(status):
        return vg
    seq = int(status["eventSeq"])
    known = ctx.known[(vg["metadata"]["namespace"], vg["metadata"]["name"])]
    if known.synced < seq:
        event = event_from(vg)
        # Postgres first: a client that hears of a transition and then reads the generation
        # finds it.
        if ctx.mirror is not None and not await ctx.mirror.write(event):
            log.debug("video_generation_jobs unchanged by %s:%s", event["id"], seq)
        await ctx.events.publish_once(event, fresh=fresh)
        known.synced = seq
    if status.get("phase") not in TERMINAL_STATUSES:
        return vg
    synced = await ctx.cluster.patch_status(vg, {**status, "syncedSeq": seq})
    ctx.seen(synced)
    await ctx.admit()  # its place under the caps is free (settled with the mirror write)
    return synced


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = dt.datetime.fromisoformat
    return (parse(end) - parse(start)).total_seconds()


def _observe(vg: VideoGeneration, old: VideoGenerationStatus, prices: Mapping[str, object]) -> None:
    status: VideoGenerationStatus = vg.get("status") or {}
    phase = status.get("phase", "")
    if phase == old.get("phase") and status.get("reason") == old.get("reason"):
        return
    log.info(
        "%s/%s: %s -> %s (%s) %s",
        vg["metadata"]["namespace"],
        vg["metadata"]["name"],
        old.get("phase") or "new",
        phase,
        status.get("reason") or "",
        status.get("message") or "",
    )
    metrics.TRANSITIONS.labels(phase=phase, reason=status.get("reason") or "").inc()
    kube_events.post_transition(vg, old)
    if phase == GenerationStatus.RUNNING and old.get("phase") == GenerationStatus.QUEUED:
        wait = _seconds_between(status.get("queuedAt"), status.get("startedAt"))
        if wait is not None:
            metrics.QUEUE_WAIT.observe(max(wait, 0))
    if phase in TERMINAL_STATUSES and old.get("phase") not in TERMINAL_STATUSES:
        # Only offered models become labels: a hand-made resource must not add series at will.
        model = vg["spec"]["model"] if vg["spec"]["model"] in prices else "other"
        metrics.FINISHED.labels(phase=phase, model=model).inc()
        took = _seconds_between(status.get("queuedAt"), status.get("finishedAt"))
        if took is not None:
            metrics.GENERATION_DURATION.labels(phase=phase).observe(max(took, 0))
        if status.get("estimatedCostUSD") and phase in _CHARGED:
            metrics.COST.labels(model=model).inc(float(status["estimatedCostUSD"]))
