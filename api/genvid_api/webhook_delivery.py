"""The webhooks' delivery loop: one per api process, claiming due messages from the outbox and
POSTing them, signed, to their endpoints.

Each pass claims at most as many messages as the process has free slots
(`GENVID_WEBHOOK_CONCURRENCY`), leased so that no other process takes them meanwhile, and sends
each in a task of its own with a bounded time (`GENVID_WEBHOOK_TIMEOUT_SECONDS`): a slow
receiver holds one slot, never the others' deliveries, and nothing here runs on a request's
path. A 2xx answer delivers the message; 410 Gone disables the endpoint; anything else (another
status, a redirect, a timeout, a refused connection or address) is retried after the next delay
of `GENVID_WEBHOOK_RETRY_DELAYS_SECONDS`, with jitter, until none is left: then it is failed.
A process that dies mid-attempt leaves a lease that ends (genvid_api.queries.webhooks): the
message is attempted again, so receivers deduplicate on `webhook-id`.

Connections go through `GuardedBackend`: unless `GENVID_WEBHOOK_ALLOW_PRIVATE_NETWORKS` is on,
it resolves the host itself, refuses it if any address is not public, and connects to the
address it checked (a name that resolves differently a moment later changes nothing).
Redirects are not followed, and no proxy from the environment is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
import uuid
from collections.abc import Iterable

import anyio
import httpcore
import httpx

from genvid_api import webhooks
from genvid_api.context import AppContext
from genvid_api.errors import UNAVAILABLE_ERRORS
from genvid_api.metrics import WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_DURATION, WEBHOOK_PENDING
from genvid_api.queries import webhooks as queries
from genvid_api.queries.webhooks import Claimed
from genvid_contracts.tasks import stop

log = logging.getLogger(__name__)

USER_AGENT = "GenVid-Webhooks/1"
# How often the backlog gauge is counted, and old messages deleted.
GAUGE_SECONDS = 5.0
PRUNE_SECONDS = 600.0


class BlockedAddress(ConnectionError):
    """The endpoint's host resolves to an address deliveries may not reach."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself to check their addresses first."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> list[str]:
        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if not self._allow_private:
            for address in addresses:
                if not webhooks.is_public(ipaddress.ip_address(address)):
                    # The address stays in the server's log: a delivery's error is shown to
                    # the endpoint's owner, who must not learn internal names this way.
                    log.warning("webhooks: %s resolves to %s, not a public address", host, address)
                    raise BlockedAddress(
                        "the host is not a public address "
                        "(GENVID_WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)"
                    )
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in await self._addresses(host, port):
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("webhooks are delivered over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _transport(allow_private: bool, connections: int) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no public way to give its pool a network backend: the same pool, guarded.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=connections,
        network_backend=GuardedBackend(allow_private),
    )
    return transport


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BlockedAddress):
        return str(exc)
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:500]


class Deliverer:
    """The process's delivery loop and its attempts in flight."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        settings = ctx.settings
        self._slots = settings.webhook_concurrency
        self._timeout = settings.webhook_timeout_seconds
        self._lease = queries.lease_seconds(self._timeout)
        self._client = httpx.AsyncClient(
            transport=_transport(settings.webhook_allow_private_networks, self._slots),
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )
        self._in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._counted_at = 0.0
        self._pruned_at = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="genvid-webhook-delivery")

    def wake(self) -> None:
        """Look for due messages now (the intake wrote some), not at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop, and hand the messages still in flight back for any process to send."""
        leased = list(self._in_flight)
        await stop(self._task, *self._in_flight.values())
        if leased:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3), self._ctx.sessions() as session:
                    await queries.release(session, leased)
        await self._client.aclose()

    async def _run(self) -> None:
        poll = self._ctx.settings.webhook_poll_seconds
        while True:
            free = self._slots - len(self._in_flight)
            claimed: list[Claimed] = []
            try:
                if free:
                    async with self._ctx.sessions() as session:
                        claimed = await queries.claim(session, free, self._lease)
                await self._housekeeping()
            except UNAVAILABLE_ERRORS as exc:
                log.warning("webhooks: delivery pass failed: %r", exc)
            except Exception:
                log.exception("webhooks: delivery pass failed")
            for delivery in claimed:
                task = asyncio.create_task(self._attempt(delivery), name="genvid-webhook-attempt")
                self._in_flight[delivery.id] = task
            if free and len(claimed) == free:
                continue  # a full batch: more may be due
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._wake.wait()

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._counted_at >= GAUGE_SECONDS:
            self._counted_at = now
            async with self._ctx.sessions() as session:
                WEBHOOK_PENDING.set(await queries.pending_count(session))
        if now - self._pruned_at >= PRUNE_SECONDS:
            self._pruned_at = now
            async with self._ctx.sessions() as session:
                await queries.prune(session, self._ctx.settings.webhook_retention_days)

    async def _attempt(self, delivery: Claimed) -> None:
        try:
            code, error = await self._send(delivery)
            outcome = await self._record(delivery, code, error)
            WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
            log.info(
                "webhooks: message %s to endpoint %s, attempt %d: %s (%s)",
                delivery.message_id,
                delivery.endpoint_id,
                delivery.attempts,
                outcome,
                code if error is None else error,
            )
        except UNAVAILABLE_ERRORS as exc:
            # The outcome is lost with the database: the lease ends, the message is sent again.
            log.warning("webhooks: could not record delivery %s: %r", delivery.id, exc)
        except Exception:
            log.exception("webhooks: delivery %s failed", delivery.id)
        finally:
            del self._in_flight[delivery.id]
            self._wake.set()

    async def _send(self, delivery: Claimed) -> tuple[int | None, str | None]:
        """The receiver's status code, or None and what went wrong."""
        body = delivery.payload.encode()
        headers = webhooks.headers(
            delivery.secret,
            delivery.message_id,
            int(time.time()),
            body,
            previous_secret=delivery.previous_secret,
        )
        started = time.perf_counter()
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._client.stream("POST", delivery.url, content=body, headers=headers) as answer,
            ):
                return answer.status_code, None  # the body is never read
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            return None, _describe(exc)
        finally:
            WEBHOOK_DELIVERY_DURATION.observe(time.perf_counter() - started)

    async def _record(self, delivery: Claimed, code: int | None, error: str | None) -> str:
        async with self._ctx.sessions() as session:
            if code is not None and 200 <= code < 300:
                await queries.delivered(session, delivery.id, code)
                return "delivered"
            if code == 410:
                await queries.gone(session, delivery, code)
                return "gone"
            reason = error or f"HTTP {code}"
            delay = webhooks.retry_delay(
                delivery.attempts, self._ctx.settings.webhook_retry_delays_seconds
            )
            if delay is None:
                await queries.failed(session, delivery.id, code, reason)
                return "failed"
            await queries.retry(session, delivery.id, delay, code, reason)
            return "retry"
