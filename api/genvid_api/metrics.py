"""The api's Prometheus metrics, and how they are served.

Labels stay bounded: a route is its template (`/generations/{generation_id}`), never the raw
path, and never a user, a generation or a prompt; a method the api does not serve counts as
`other`. They are served by their own small HTTP server on `GENVID_METRICS_PORT` (off at 0),
so `/metrics` is never on the public port. The counters live in the process's registry: the
api runs one uvicorn worker per process (the chart runs one per pod), so each pod is one
scrape target and no multiprocess mode is needed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from datetime import time as midnight

from prometheus_client import Counter, Gauge, Histogram, start_http_server
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genvid_api.budgets import Period, now
from genvid_api.config import Settings

UNMATCHED_ROUTE = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Refusal reasons of POST /generate (genvid_api.guardrails); listed so each has a series at 0.
REFUSAL_REASONS = ("rate_limited", "budget_user", "budget_global")

REQUESTS = Counter(
    "genvid_api_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "code"],
)
REQUEST_DURATION = Histogram(
    "genvid_api_http_request_duration_seconds",
    "Time to answer an HTTP request (event streams excluded: they last as long as the client).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge(
    "genvid_api_http_requests_in_flight",
    "HTTP requests being answered now (open event streams are counted apart).",
)
SSE_STREAMS = Gauge("genvid_api_sse_streams_open", "Server-sent event streams open now.")
SSE_EVENTS = Counter(
    "genvid_api_sse_events_sent_total", "Generation events sent on server-sent event streams."
)
URLS_SIGNED = Counter("genvid_api_urls_signed_total", "Preview URLs signed (cache misses).")
URL_CACHE_HITS = Counter(
    "genvid_api_url_cache_hits_total", "Signed preview URLs served from the cache."
)
AUTH_FAILURES = Counter(
    "genvid_api_auth_failures_total",
    "Requests refused 401 (no, invalid or expired token; bad credentials), by route template.",
    ["route"],
)
GENERATE_REFUSALS = Counter(
    "genvid_api_generate_refusals_total",
    "POST /generate requests refused before anything was created, by reason.",
    ["reason"],
)
DB_POOL_IN_USE = Gauge(
    "genvid_api_db_pool_connections_in_use", "Database connections checked out of the pool."
)
BUDGET_LIMIT = Gauge(
    "genvid_budget_limit_usd",
    "The configured budget per period, in US dollars: scope global (everyone's) or user "
    "(each user's default).",
    ["scope"],
)
BUDGET_PERIOD_START = Gauge(
    "genvid_budget_period_start_timestamp_seconds",
    "Start of the current budget period (Unix time), by the api's clock.",
)
WEBHOOK_DELIVERIES = Counter(
    "genvid_api_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome: delivered (2xx), retry (scheduled again), failed "
    "(no attempt left), gone (410: the endpoint was disabled).",
    ["outcome"],
)
WEBHOOK_DELIVERY_DURATION = Histogram(
    "genvid_api_webhook_delivery_duration_seconds",
    "Time of one webhook delivery attempt, from connecting to the receiver's status line.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOK_PENDING = Gauge(
    "genvid_api_webhook_deliveries_pending",
    "Webhook messages not yet delivered or failed, in the whole deployment (as last counted "
    "by this process).",
)
WEBHOOK_OUTCOMES = ("delivered", "retry", "failed", "gone")
for _reason in REFUSAL_REASONS:
    GENERATE_REFUSALS.labels(reason=_reason)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)


def route_template(scope: Scope) -> str:
    """The matched route's template; unmatched requests (404s, scanners) share one value."""
    route: BaseRoute | None = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class MetricsMiddleware:
    """Counts and times every HTTP request (a plain ASGI middleware: streams pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500  # what the client gets if the app raises before answering
        streaming = False
        IN_FLIGHT.inc()

        async def observed_send(message: Message) -> None:
            nonlocal code, streaming
            if message["type"] == "http.response.start":
                code = message["status"]
                headers = dict(message.get("headers") or [])
                if headers.get(b"content-type", b"").startswith(b"text/event-stream"):
                    streaming = True
                    IN_FLIGHT.dec()
                    SSE_STREAMS.inc()
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            if streaming:
                SSE_STREAMS.dec()
            else:
                IN_FLIGHT.dec()
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = route_template(scope)
            REQUESTS.labels(method=method, route=route, code=str(code)).inc()
            if not streaming:
                REQUEST_DURATION.labels(method=method, route=route).observe(
                    time.perf_counter() - started
                )
            if code == 401:
                AUTH_FAILURES.labels(route=route).inc()


@contextlib.contextmanager
def serving(settings: Settings, engine: AsyncEngine) -> Iterator[None]:
    """Serve the registry on `GENVID_METRICS_PORT` (0: not at all) while the application runs,
    with the figures read at scrape time (the pool, the period) or fixed by the settings."""
    pool = engine.sync_engine.pool
    DB_POOL_IN_USE.set_function(lambda: float(pool.checkedout()))  # type: ignore[attr-defined]
    BUDGET_LIMIT.labels(scope="user").set(float(settings.user_daily_budget_usd))
    BUDGET_LIMIT.labels(scope="global").set(float(settings.global_daily_budget_usd))
    BUDGET_PERIOD_START.set_function(lambda: _period_start(settings))
    port = settings.metrics_port
    if not port:
        yield
        return
    server, thread = start_http_server(port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _period_start(settings: Settings) -> float:
    start = Period.at(now(), settings.budget_period).start
    return datetime.combine(start, midnight(), UTC).timestamp()
