"""kopf handlers: they only route triggers to `reconcile`; the decisions live in `phases`.

`register` wires them into a registry once the settings are read (the retention needs them
then); the handlers find the settings in kopf's memo, put there by `__main__` (read once per
process). The periodic resync is no kopf timer but one loop (`resync`) over the names of the
unsettled generations, which the VideoGeneration events keep: with no timer, daemon or on.delete
handler, no handler needs kopf's finalizer, so kopf writes nothing to a VideoGeneration; and
with no change handler either, none needs kopf's diff base, whose per-event copy of the body
`NoDiffBase` leaves out.

Jobs and pods are indexed by generation (`kopf.index`): kopf fills the indexes from the watches
it runs anyway, before any other handler runs, so a pass reads them instead of asking the
apiserver. An event whose pass has nothing to decide is dropped here: a generation's event for
a version its last pass already finished with (its own status patch), a settled generation
without a Job (what a restart over finished generations sees), and a Job's or pod's event of a
generation no pass holds (settled and forgotten, or its own first pass is still to come and
will read the indexes then).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterable
from typing import Any, cast

import kopf

from genvid_contracts import collector
from genvid_contracts.resource import GROUP, PLURAL, VERSION, VideoGeneration
from genvid_contracts.tasks import stop
from genvid_operator import metrics, resync, retention
from genvid_operator.admission import Admissions
from genvid_operator.cluster import Cluster, Json, api_client
from genvid_operator.config import Settings
from genvid_operator.jobspec import GENERATION_LABEL, MANAGED_BY
from genvid_operator.mirror import GenerationMirror
from genvid_operator.publish import EventPublisher, NatsUnavailable
from genvid_operator.reconcile import Context, reconcile
from genvid_operator.results import StoredResults

log = logging.getLogger(__name__)

# kopf's initial LIST, in pages of this many objects (see `startup`).
LIST_PAGE_SIZE = 500
# How long kopf's worker for an object outlives its last event (kopf's default: 5 s).
WORKER_IDLE_SECONDS = 0.5


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    kopf.on.login(registry=registry)(login)
    kopf.on.startup(registry=registry)(startup)
    kopf.on.cleanup(registry=registry)(cleanup)
    kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)(generation_changed)
    children: list[tuple[str, str, dict[str, Any]]] = [
        ("batch", "jobs", {"app.kubernetes.io/managed-by": MANAGED_BY}),
        ("", "pods", {GENERATION_LABEL: kopf.PRESENT}),
    ]
    for group, plural, labels in children:
        index = f"{plural}_by_generation"  # the kwarg name under which handlers receive it
        kopf.index(group, "v1", plural, labels=labels, id=index, registry=registry)(by_generation)
        kopf.on.event(group, "v1", plural, labels=labels, registry=registry)(child_changed)
    retention.register(registry, settings)


def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


async def by_generation(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, Json]:
    """A Job or pod under the name of the generation it runs (a copy: kopf's body is live)."""
    return {labels[GENERATION_LABEL]: dict(body)}


async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    """`kwargs` hold the indexes (empty yet: kopf fills them before the first event handler)."""
    config: Settings = memo.settings
    jobs: kopf.Index[str, Json] = kwargs["jobs_by_generation"]
    pods: kopf.Index[str, Json] = kwargs["pods_by_generation"]
    # Idle watch streams can go silent without an error: make them reconnect (kopf #698).
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # kopf does not throttle requests: what bounds the operator's load on the apiserver is its
    # connection pool (`kube_connections`); kopf's workers, one per object with events, stay
    # unlimited unless `worker_limit` says otherwise (a limit slows a burst and a restart).
    settings.queueing.worker_limit = config.worker_limit
    # Start-up memory: the peak of the initial listing stays as RSS (the allocator keeps its
    # freed arenas), so it is the peak that is kept low. kopf LISTs every object in one response
    # unless paged (500 a page, as client-go's informers), and it keeps one page at a time; each
    # object's worker holds its last event's body until it ends, 5 s after that event by
    # default, so at start-up every object's body lived at once. Ending a worker soon after its
    # last event costs a new task for the object's next event. With 5,000 VideoGenerations:
    # 241 -> 168 MiB, both together (either one alone: 248 and 225 MiB; bench.operator_scale).
    settings.watching.chunk_size = LIST_PAGE_SIZE
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    settings.posting.level = logging.WARNING
    # No handler needs a finalizer (no timer, daemon or on.delete), so kopf puts none on a
    # VideoGeneration. Earlier versions' resync timer did, under this name: named so, kopf
    # removes it from any object it sees carrying it (one PATCH each, once), and deleting
    # such an object never hangs.
    settings.persistence.finalizer = f"{GROUP}/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    # kopf deep-copies every event's body into an "essence" to diff it with the last handled
    # one; only change and spawning handlers read that, and the operator has neither. No
    # essence: 8 % of the operator's CPU less while it dispatches a backlog (py-spy).
    settings.persistence.diffbase_storage = NoDiffBase()
    # kopf retries a failed startup: close what this attempt opened before it does.
    async with contextlib.AsyncExitStack() as opened:
        cluster = Cluster(await api_client(config.kube_connections))
        opened.push_async_callback(cluster.close)
        events = EventPublisher.connect(config.nats_url, config.nats_auth())  # in the background
        opened.push_async_callback(events.close)
        mirror = (
            await GenerationMirror.connect(config.database_url) if config.database_url else None
        )
        if mirror is not None:
            opened.push_async_callback(mirror.close)
        admissions = (
            Admissions(mirror.pool, config.global_max_active, config.user_max_active)
            if mirror is not None
            else None
        )
        memo.ctx = Context(
            settings=config,
            cluster=cluster,
            events=events,
            mirror=mirror,
            admissions=admissions,
            results=StoredResults.from_settings(config),
            jobs=jobs,
            pods=pods,
        )
        opened.pop_all()
    kicked = memo.ctx.kicked
    metrics.KICKS_PENDING.set_function(lambda: float(len(kicked)))
    unsettled = memo.unsettled = resync.Unsettled()
    metrics.TRACKED.labels(structure="unsettled").set_function(lambda: float(len(unsettled)))
    memo.resync_loop = asyncio.create_task(
        resync.resync_loop(unsettled, functools.partial(resync_pass, memo), config.resync_seconds),
        name="resync",
    )
    if admissions is not None:
        memo.admission_loop = asyncio.create_task(admission_loop(memo.ctx), name="admission")
    collector.tune(config.gc_young_threshold)  # what is loaded by now lives as long as we do


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff base for handlers that need none: an empty essence, never stored.

    kopf builds the essence of every event (a deep copy of the body without its status) and
    diffs it with the stored one; the diff reaches only on.create/update/resume/delete
    handlers and decides whether timers and daemons restart, and this operator has neither
    (`register`). Its event handlers and indexes get the body itself, and the finalizer an
    earlier version left is removed on its own test (`settings.persistence.finalizer`)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[object] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


async def admission_loop(ctx: Context) -> None:
    """The timer of admission: settle what was left unsettled, admit, kick what was admitted
    and what waited past its deadline; forever. At every resync interval it also releases
    generations whose resource was deleted while no operator watched (the DELETED event that
    releases them was never seen)."""
    assert ctx.admissions is not None
    next_vanished_check = 0.0
    loop = asyncio.get_running_loop()
    # The kicks of overdue generations still running: one at a time per generation, so one
    # whose pass keeps failing (the apiserver away) is not kicked again at every interval.
    overdue: dict[str, asyncio.Task[None]] = {}
    while True:
        try:
            await ctx.admissions.reap()
            if loop.time() >= next_vanished_check:
                await _reap_vanished(ctx, ctx.admissions)
                next_vanished_check = loop.time() + ctx.settings.resync_seconds
            await ctx.admit()
            overdue = {name: task for name, task in overdue.items() if not task.done()}
            late = [name for name in await ctx.admissions.overdue() if name not in overdue]
            overdue.update(zip(late, ctx.kick(late), strict=True))
        except asyncio.CancelledError:
            raise
        except Exception:
            metrics.RECONCILE_ERRORS.labels(trigger="admission").inc()
            log.exception("admission pass failed; retrying")
        await asyncio.sleep(ctx.settings.admission_interval_seconds)


async def _reap_vanished(ctx: Context, admissions: Admissions) -> None:
    # The rows first, then the resources: one created in between is never taken for gone.
    candidates = await admissions.created_unfinished(grace_seconds=ctx.settings.resync_seconds)
    if not candidates:
        return
    existing = await ctx.cluster.generation_names(ctx.settings.namespace)
    await ctx.vanished([name for name in candidates if name not in existing])


async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await stop(getattr(memo, "admission_loop", None))
    await stop(getattr(memo, "resync_loop", None))
    ctx: Context | None = getattr(memo, "ctx", None)
    if ctx is None:
        return
    for task in list(ctx.kicked):
        task.cancel()
    await ctx.events.close()
    if ctx.mirror is not None:
        await ctx.mirror.close()
    await ctx.cluster.close()


async def _reconcile(
    memo: kopf.Memo, namespace: str, name: str, trigger: str, body: kopf.Body | None = None
) -> None:
    """A pass with its metrics. One that fails leaves its generation to the resync loop: kopf
    does not retry an event handler."""
    vg = cast(VideoGeneration, dict(body)) if body is not None else None
    try:
        with (
            metrics.RECONCILES_IN_PROGRESS.track_inprogress(),
            metrics.RECONCILE_DURATION_BY_TRIGGER[trigger].time(),
        ):
            await reconcile(memo.ctx, namespace, name, vg)
    except NatsUnavailable as exc:
        # Expected while NATS is down: the transition stays unsynced, and the resync publishes
        # it at its next interval once NATS is back.
        metrics.RECONCILE_ERRORS.labels(trigger=trigger).inc()
        memo.unsettled.add(name)
        log.warning("%s/%s: %s", namespace, name, exc)
    except Exception:
        metrics.RECONCILE_ERRORS.labels(trigger=trigger).inc()
        memo.unsettled.add(name)
        raise


async def generation_changed(
    type: str, name: str, namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """Every event of every VideoGeneration comes here: it keeps the resync's set of unsettled
    generations, and passes over the generation unless there is nothing to decide."""
    assert namespace, "VideoGeneration is namespaced"
    metrics.watched("generation")
    ctx: Context = memo.ctx
    if type == "DELETED":
        memo.unsettled.discard(name)
        await ctx.vanished([name])
        return
    vg = cast(VideoGeneration, body)
    ttl = ctx.settings.ttl_seconds_after_finished
    memo.unsettled.observe(name, resync.unsettled(vg, ctx.job(name), ttl))
    if ctx.settled_here(namespace, name, vg):
        return
    await _reconcile(memo, namespace, name, "generation", body)


async def child_changed(
    resource: kopf.Resource,
    labels: kopf.Labels,
    namespace: str | None,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A Job or one of its pods changed: a pass for its generation, if one is held."""
    assert namespace, "Jobs and pods are namespaced"
    trigger = "job" if resource.plural == "jobs" else "pod"
    metrics.watched(trigger)
    if (namespace, labels[GENERATION_LABEL]) in memo.ctx.known:
        await _reconcile(memo, namespace, labels[GENERATION_LABEL], trigger)


async def resync_pass(memo: kopf.Memo, name: str) -> None:
    """The resync of one generation of the set: a pass unless what the passes last saw of it is
    settled, then out of the set if it is settled now (or forgotten: settled without a Job, or
    gone). A pass that raises leaves it in the set."""
    ctx: Context = memo.ctx
    if _settled_as_seen(ctx, name) is not True:
        await _reconcile(memo, ctx.settings.namespace, name, "resync")
    if _settled_as_seen(ctx, name) is not False:
        memo.unsettled.discard(name)


def _settled_as_seen(ctx: Context, name: str) -> bool | None:
    """Whether the newest body a pass holds of the generation is settled; None: none held."""
    vg = ctx.current(ctx.settings.namespace, name, None)
    if vg is None:
        return None
    return not resync.unsettled(vg, ctx.job(name), ctx.settings.ttl_seconds_after_finished)
