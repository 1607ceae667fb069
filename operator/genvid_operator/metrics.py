"""Prometheus metrics. Labels stay low-cardinality: never a user, prompt or object name."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
ADMISSION_WAIT = Histogram(
    "genvid_admission_wait_seconds",
    "From acceptance to admission under the concurrency caps.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)
