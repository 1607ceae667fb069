"""From the stream of transitions to the webhooks' outbox: one durable JetStream consumer for
the whole deployment, whatever the number of api processes or endpoints.

Every api process pulls from the same durable consumer (`GENVID_WEBHOOK_CONSUMER`), so each
transition is taken by one of them; it writes the message for every endpoint of the
generation's owner into `webhook_deliveries` and acks the NATS message only once that insert
has committed. A process that dies first leaves the message unacked: JetStream gives it to
another process after `ACK_WAIT_SECONDS`, and the insert, unique on (endpoint, message id),
writes nothing twice. The consumer survives restarts of the api (it is durable), so what was
published meanwhile is read when an api comes back. A message that is not a transition of the
subject's generation, or that the database refuses, is dropped with a log line (terminated): it
would fail every time and, one message being out at a time, hold back every later one.

At most one message is out unacked at a time (`max_ack_pending=1`): the outbox then receives
a generation's transitions in stream order whichever process takes each one, which the delivery
loop's ordering relies on. Transitions are a few per generation, and each costs one insert.

Only the owner's endpoints get a message: the subject's user, the body's user and the
generation's row must agree (anyone who may publish could claim someone else's generation).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from genvid_api import webhooks
from genvid_api.context import AppContext
from genvid_api.errors import UNAVAILABLE_ERRORS
from genvid_api.nats_stream import decode
from genvid_api.queries import webhooks as queries
from genvid_contracts.events import STREAM_NAME, SUBJECT_PREFIX, job_subject

log = logging.getLogger(__name__)

ACK_WAIT_SECONDS = 30.0
# How long one pull waits for a message before asking again.
FETCH_SECONDS = 5.0
# After an error (NATS or the database away): the message is offered again after this.
RETRY_SECONDS = 2.0


# The largest eventSeq the outbox's integer column holds.
_MAX_SEQ = 2**31 - 1

# NATS or the database away: the intake subscribes again once they are back.
_INTERRUPTIONS: tuple[type[Exception], ...] = (
    nats.errors.Error,
    nats.js.errors.Error,
    *UNAVAILABLE_ERRORS,
)


def consumer_config(name: str) -> ConsumerConfig:
    """Transitions published from the consumer's creation on (none of the stream's past)."""
    return ConsumerConfig(
        durable_name=name,
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_SECONDS,
        max_ack_pending=1,
        filter_subject=f"{SUBJECT_PREFIX}.>",
    )


def _transition(body: dict[str, Any] | None) -> tuple[uuid.UUID, uuid.UUID, int] | None:
    """The user, generation and event sequence a message body names, if it is a transition."""
    if body is None or not isinstance(body.get("status"), str):
        return None
    try:
        found = uuid.UUID(str(body["user_id"])), uuid.UUID(str(body["id"])), int(body["seq"])
    except (KeyError, ValueError, TypeError):
        return None
    return found if 0 < found[2] <= _MAX_SEQ else None


async def take(ctx: AppContext, msg: Msg) -> int:
    """Write the message's rows (how many were new); a message that is not a transition of the
    subject's generation writes none."""
    body = decode(msg.data)
    found = _transition(body)
    if body is None or found is None:
        log.warning("webhooks: skipping an undecodable message on %s", msg.subject)
        return 0
    user_id, generation_id, seq = found
    if msg.subject != job_subject(user_id, generation_id):
        log.warning("webhooks: skipping a message whose body does not match %s", msg.subject)
        return 0
    message_id, event_type, payload = webhooks.message(body, msg.metadata.timestamp)
    async with ctx.sessions() as session:
        return await queries.enqueue(
            session,
            user_id=user_id,
            generation_id=generation_id,
            event_seq=seq,
            message_id=message_id,
            event_type=event_type,
            payload=payload.decode(),
        )


async def _pull(ctx: AppContext, on_taken: Callable[[], None]) -> None:
    """Take messages until NATS or the database fails (the caller subscribes again)."""
    name = ctx.settings.webhook_consumer
    subscription = await ctx.js.pull_subscribe(
        f"{SUBJECT_PREFIX}.>", durable=name, stream=STREAM_NAME, config=consumer_config(name)
    )
    log.info("webhooks: taking transitions from consumer %s", name)
    try:
        while ctx.nats.is_connected:
            try:
                messages = await subscription.fetch(1, timeout=FETCH_SECONDS)
            except TimeoutError:
                continue
            for msg in messages:
                try:
                    written = await take(ctx, msg)
                except UNAVAILABLE_ERRORS:
                    await msg.nak(delay=RETRY_SECONDS)
                    raise
                except Exception:
                    # Not an outage but this message (a body the database refuses): taken
                    # again it would fail again, and with one message out at a time it would
                    # hold every later transition back. It is dropped, loudly.
                    log.exception("webhooks: dropping a message on %s", msg.subject)
                    await msg.term()
                    continue
                await msg.ack()
                if written:
                    on_taken()
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()


async def run(ctx: AppContext, on_taken: Callable[[], None]) -> None:
    """Feed the outbox until cancelled, subscribing again after any failure; `on_taken` is
    called after each message that wrote rows (this process's delivery loop looks at once)."""
    while True:
        try:
            if ctx.nats.is_connected:
                await _pull(ctx, on_taken)
        except asyncio.CancelledError:
            raise
        except _INTERRUPTIONS as exc:
            log.warning("webhooks: intake interrupted, resuming: %r", exc)
        except Exception:
            log.exception("webhooks: intake failed; resuming")
        await asyncio.sleep(RETRY_SECONDS)
