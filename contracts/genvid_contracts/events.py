"""The GENVID_JOBS stream: its configuration, subjects, message ids and message body.

Each transition of a job is one message on `genvid.jobs.<user_id>.<job_id>`, identified by
`<job_id>:<seq>` (JetStream drops a repeat within the duplicate window), with a
`TransitionEvent` JSON body. The api reads these for Server-Sent Events.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NotRequired, TypedDict

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

STREAM_NAME = "GENVID_JOBS"
SUBJECT_PREFIX = "genvid.jobs"
MSG_ID_HEADER = "Nats-Msg-Id"


def stream_config() -> StreamConfig:
    """Whoever starts first (api or operator) creates the stream with exactly this."""
    return StreamConfig(
        name=STREAM_NAME,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        storage=StorageType.FILE,
        max_age=7 * 24 * 3600,
        duplicate_window=120,
    )


def job_subject(user_id: object, job_id: object) -> str:
    return f"{SUBJECT_PREFIX}.{user_id}.{job_id}"


def user_subjects(user_id: object) -> str:
    return f"{SUBJECT_PREFIX}.{user_id}.*"


def msg_id(job_id: object, seq: int) -> str:
    return f"{job_id}:{seq}"


class TransitionEvent(TypedDict):
    """The message body. `status` is QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED or REJECTED."""

    id: str
    user_id: str
    status: str
    seq: int
    reason: str | None
    message: str | None
    attempts: int
    updated_at: str | None
    started_at: str | None
    finished_at: str | None
    bucket: str | None
    object_name: str | None
    poster_object: str | None
    size_bytes: int | None
    duration_seconds: float | None
    cost_usd: str | None
    # While waiting for capacity (QUEUED, reason WaitingForCapacity): 1 is admitted next.
    queue_position: NotRequired[int | None]
    # The generation's deadline (RFC 3339), if its request set one.
    deadline_at: NotRequired[str | None]


async def ensure_stream(js: JetStreamContext) -> bool:
    """Create the stream if missing (True if this call created it); an existing stream is left
    as it is. The api and the operator may race here: both create exactly `stream_config()`."""
    try:
        await js.stream_info(STREAM_NAME)
        return False
    except NotFoundError:
        try:
            await js.add_stream(stream_config())
            return True
        except BadRequestError:
            # Created concurrently by the other component or another replica.
            await js.stream_info(STREAM_NAME)
            return False


async def publish(js: JetStreamContext, event: TransitionEvent) -> None:
    """Publish one transition under its message id, so JetStream drops a repeat."""
    await js.publish(
        job_subject(event["user_id"], event["id"]),
        json.dumps(event).encode(),
        stream=STREAM_NAME,
        headers={MSG_ID_HEADER: msg_id(event["id"], event["seq"])},
    )


@dataclass(frozen=True)
class NatsAuth:
    """How the api and the operator prove who they are to NATS: a user and password, or an
    nkey seed; TLS for a `tls://` URL (or whenever a CA file is given), verified against the
    system's roots or `tls_ca_file`."""

    user: str | None = None
    password: str | None = None
    nkey_seed: str | None = None
    tls_ca_file: str | None = None

    def options(self, url: str) -> dict[str, object]:
        options: dict[str, object] = {}
        if self.user:
            options |= {"user": self.user, "password": self.password or ""}
        if self.nkey_seed:
            options["nkeys_seed_str"] = self.nkey_seed
        if self.tls_ca_file or url.startswith("tls://"):
            options["tls"] = ssl.create_default_context(cafile=self.tls_ca_file)
        return options


async def connect(
    client: NATS,
    url: str,
    *,
    name: str,
    on_connected: Callable[[], Awaitable[None]],
    auth: NatsAuth | None = None,
) -> None:
    """Connect `client`, retrying until NATS answers, and reconnect forever: run it as a task,
    so that nothing waits for NATS to start. `on_connected` runs after the connection and
    every reconnection (to create the stream again if it is gone)."""
    log = logging.getLogger(name)

    async def on_error(exc: Exception) -> None:
        log.warning("NATS: %r", exc)

    async def on_reconnected() -> None:
        log.info("NATS: reconnected")
        await on_connected()

    await client.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        error_cb=on_error,
        reconnected_cb=on_reconnected,
        **(auth or NatsAuth()).options(url),  # type: ignore[arg-type]  # nats-py's own types
    )
    log.info("NATS: connected")
    await on_connected()
