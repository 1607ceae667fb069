"""The operator's side of the job stream, simulated: transitions published as it publishes
them, and the consumers the api keeps on the stream."""

from __future__ import annotations

import json
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from genvid_contracts.events import STREAM_NAME, job_subject

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "REJECTED")


async def publish_transition(
    js: JetStreamContext, user_id: str, job_id: str, status: str, seq: int, **extra: Any
) -> int:
    """Publish as the operator does (or, with `id`, a body claiming another generation);
    returns the stream sequence."""
    body = {
        "id": extra.pop("id", job_id),
        "user_id": user_id,
        "status": status,
        "seq": seq,
        "reason": extra.pop("reason", None),
        "message": extra.pop("message", None),
        "attempts": extra.pop("attempts", 1 if status != "QUEUED" else 0),
        "updated_at": "2026-11-24T10:00:00+00:00",
        "object_name": extra.pop("object_name", None),
        "poster_object": extra.pop("poster_object", None),
        "bucket": extra.pop("bucket", None),
        "cost_usd": extra.pop("cost_usd", None),
    }
    ack = await js.publish(
        job_subject(user_id, job_id),
        json.dumps(body).encode(),
        stream=STREAM_NAME,
        headers={"Nats-Msg-Id": f"{job_id}:{seq}"},
    )
    return int(ack.seq)


CONSUMER_LIST_PAGE = 256  # the server's page size for $JS.API.CONSUMER.LIST


async def _consumers(js: JetStreamContext) -> list[ConsumerInfo]:
    found: list[ConsumerInfo] = []
    while True:
        page = await js.consumers_info(STREAM_NAME, offset=len(found))
        found += page
        if len(page) < CONSUMER_LIST_PAGE:
            return found


async def consumer_count(js: JetStreamContext, user_id: str) -> int:
    """Consumers on GENVID_JOBS reading one user's subjects (their job and user streams).

    Counting only the test's own (new) user keeps other tests' consumers, still being deleted
    or expiring on a loaded machine, out of the count.
    """
    prefix = job_subject(user_id, "")
    count = 0
    for info in await _consumers(js):
        config = info.config
        subjects = [config.filter_subject or "", *(config.filter_subjects or [])]
        if any(subject.startswith(prefix) for subject in subjects):
            count += 1
    return count


async def stream_consumers(js: JetStreamContext) -> set[str]:
    """The names of every consumer on GENVID_JOBS, whoever reads it (each api process's hub
    among them)."""
    return {info.name for info in await _consumers(js)}
