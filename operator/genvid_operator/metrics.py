"""Prometheus metrics. Labels stay low-cardinality: never a user, prompt or object name.

Labels whose values are known up front (the reconcile triggers, the watched resources, the
caps) are created at import, so their series exist at 0 before the first event: a rate over
them is 0, not empty, and an alert on them can tell "none" from "not scraped".
"""

from __future__ import annotations

import uuid
from collections import Counter as Tally
from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge, Histogram

# What runs a reconcile pass: a watch event of one of these resources, the resync loop, or
# an admission pass (a generation it admitted, or the admission loop itself).
TRIGGERS = ("generation", "job", "pod", "resync", "admission")
WATCHED = ("generation", "job", "pod")
CAPS = ("global", "user")

TRANSITIONS = Counter(
    "genvid_generation_transitions_total",
    "VideoGeneration transitions, by phase entered and reason.",
    ["phase", "reason"],
)
FINISHED = Counter(
    "genvid_generations_finished_total",
    "Generations that reached a final phase.",
    ["phase", "model"],
)
COST = Counter(
    "genvid_generation_cost_usd_total",
    "Estimated spend on finished generations, in US dollars.",
    ["model"],
)
QUEUE_WAIT = Histogram(
    "genvid_generation_queue_wait_seconds",
    "From Queued to the worker running.",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
GENERATION_DURATION = Histogram(
    "genvid_generation_duration_seconds",
    "From Queued to a final phase.",
    ["phase"],
    buckets=(5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 900),
)
JOBS_CREATED = Counter("genvid_worker_jobs_created_total", "Worker Jobs created.")
STATUS_CONFLICTS = Counter(
    "genvid_status_conflicts_total",
    "Status patches refused because another writer changed the object first (re-decided).",
)
RECONCILE_ERRORS = Counter(
    "genvid_reconcile_errors_total",
    "Reconcile passes that raised, by what triggered them.",
    ["trigger"],
)
RECONCILE_DURATION = Histogram(
    "genvid_reconcile_duration_seconds",
    "Time of one reconcile pass (observe, decide, act, mirror), by what triggered it.",
    ["trigger"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILES_IN_PROGRESS = Gauge(
    "genvid_reconciles_in_progress", "Reconcile passes running now (at most one per object)."
)
KICKS_PENDING = Gauge(
    "genvid_admission_kicks_pending",
    "Reconciles of just-admitted generations started in the background and not done yet.",
)
WATCH_EVENTS = Counter(
    "genvid_watch_events_total",
    "Watch events received from the apiserver, by resource (VideoGenerations, Jobs, pods).",
    ["resource"],
)
WATCH_EVENT_TIME = Gauge(
    "genvid_watch_last_event_timestamp_seconds",
    "When the last watch event of the resource arrived (Unix time): a stalled watch stops it.",
    ["resource"],
)
for _trigger in TRIGGERS:
    RECONCILE_ERRORS.labels(trigger=_trigger)
# The children a watch event or a pass updates, resolved once: `.labels()` is a lookup under
# the metric's lock each time.
RECONCILE_DURATION_BY_TRIGGER = {
    trigger: RECONCILE_DURATION.labels(trigger=trigger) for trigger in TRIGGERS
}
# Veo's throttling (the worker's Reason.RATE_LIMITED) has a series before the first retry.
TRANSITIONS.labels(phase="RUNNING", reason="RateLimited")
for _resource in WATCHED:
    WATCH_EVENTS.labels(resource=_resource)

# Budgets and admission (genvid_operator.admission): global figures only, never per user.
SETTLED_USD = Counter(
    "genvid_budget_settled_usd_total",
    "Charged to budgets by settled generations (refunded ones count 0), in US dollars.",
)
RESERVED_USD = Gauge(
    "genvid_budget_reserved_usd",
    "Held by unfinished generations' reservations, all users, in US dollars.",
)
ADMISSION_ACTIVE = Gauge(
    "genvid_admission_active", "Admitted generations not finished yet (under the global cap)."
)
ADMISSION_WAITING = Gauge("genvid_admission_waiting", "Accepted generations waiting for capacity.")
ADMISSION_MAX_ACTIVE = Gauge(
    "genvid_admission_max_active",
    "The concurrency caps: generations running at once, everyone's (global) or each user's.",
    ["scope"],
)
ADMISSION_WAITING_BY_CAP = Gauge(
    "genvid_admission_waiting_by_cap",
    "Generations waiting for capacity, by the cap that holds them: user (their owner runs "
    "as many as the per-user cap allows) or global (every place is taken).",
    ["cap"],
)
for _cap in CAPS:
    ADMISSION_WAITING_BY_CAP.labels(cap=_cap)
ADMITTED = Counter(
    "genvid_admission_admitted_total", "Generations admitted under the concurrency caps."
)
ADMISSION_PASS_TIME = Gauge(
    "genvid_admission_last_pass_timestamp_seconds",
    "When the last admission pass ended (Unix time): the admission loop is alive.",
)
SPENT_USD = Gauge(
    "genvid_budget_spent_usd",
    "Charged to the global budget in the latest period that has any, in US dollars.",
)
SPENT_PERIOD_START = Gauge(
    "genvid_budget_spent_period_start_timestamp_seconds",
    "Start of the period genvid_budget_spent_usd is about (Unix time).",
)
ADMISSION_WAIT = Histogram(
    "genvid_admission_wait_seconds",
    "From acceptance to admission under the concurrency caps.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)
RETENTION_DELETED = Counter(
    "genvid_retention_deleted_total",
    "Finished VideoGenerations deleted past their retention (their rows stay in Postgres).",
)
RETENTION_SWEEP_TIME = Gauge(
    "genvid_retention_last_sweep_timestamp_seconds",
    "When the last retention sweep ended (Unix time): the retention loop is alive.",
)
TRACKED = Gauge(
    "genvid_operator_tracked_generations",
    "Per-generation entries held in memory, by structure (locks: reconcile locks; finished: "
    "the retention map; unsettled: the resync's set). They go when the resource goes, so they "
    "follow what exists.",
    ["structure"],
)


# A resource's time of last event has no series before its first event (0 would read as a
# watch stalled since 1970), so its children are resolved then.
_WATCH_CHILDREN: dict[str, tuple[Counter, Gauge]] = {}


def watched(resource: str) -> None:
    """A watch event of `resource` arrived."""
    children = _WATCH_CHILDREN.get(resource)
    if children is None:
        children = _WATCH_CHILDREN[resource] = (
            WATCH_EVENTS.labels(resource=resource),
            WATCH_EVENT_TIME.labels(resource=resource),
        )
    events, last = children
    events.inc()
    last.set_to_current_time()


def observe_waiting(
    running: Mapping[uuid.UUID, int], waiting_owners: Iterable[uuid.UUID], user_cap: int
) -> None:
    """Count each still-waiting generation under the cap that holds it, given what every
    owner runs after the pass."""
    held = Tally(
        "user" if running.get(owner, 0) >= user_cap else "global" for owner in waiting_owners
    )
    for cap in CAPS:
        ADMISSION_WAITING_BY_CAP.labels(cap=cap).set(held[cap])
