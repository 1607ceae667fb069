"""The outbox: every generation row gets its VideoGeneration, even if the api died in between.

POST /generate commits the row (resource_created=false) before it creates the resource, then
sets the flag. If the process dies, or the apiserver is unreachable, in between, the row stays
unflagged; the reconciler loop here finds such rows once they are older than a grace period
and creates their resources. Creating is idempotent (409 is success), so the request path, the
reconciler of every api replica and cancellation may all try at once and a resource is still
made once; the row lock (SELECT ... FOR UPDATE) serializes only their short database updates.

An unflagged row may still have its resource: a create whose answer was lost (timeout, 5xx)
may have been stored. So a cancel is never settled in the database alone: the resource is
created with spec.cancel=true (the builder copies `cancel_requested`), or, when it turns out to
exist already, patched. The operator then cancels it without starting a Job and publishes the
transition itself.

The loop also re-sends cancels not known to have reached their resource (a merge patch of
spec.cancel=true is idempotent); a resource that is gone (404) has nothing left to cancel.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

from genvid_api import budgets, nats_stream
from genvid_api.context import AppContext
from genvid_api.models import Generation, User
from genvid_api.queries import generations
from genvid_api.resources import ApiserverUnavailable, InvalidResource
from genvid_contracts.status import TERMINAL_STATUSES, GenerationStatus

log = logging.getLogger(__name__)

REJECTED_REASON = "InvalidSpec"


async def ensure_resource(ctx: AppContext, generation_id: uuid.UUID) -> Generation | None:
    """Create the generation's resource unless done; returns the generation as it is afterwards.

    No database connection is held while the apiserver answers (that can take seconds under
    load, and a held connection per request would exhaust the pool): the row is read, the
    resource created (idempotent: 409 is success), then the row locked and flagged. A cancel
    that arrived meanwhile is delivered by a patch afterwards, so the resource ends canceled
    whichever create won. A resource the apiserver refuses as invalid will never be accepted:
    the generation becomes REJECTED (published like an operator transition). Unreachable
    apiserver: the row stays pending for the next pass.
    """
    async with ctx.sessions() as session:
        generation = await generations.read(session, generation_id)
        owner = await session.get(User, generation.user_id) if generation else None
        # Commit, not rollback: ends the transaction without expiring the loaded objects.
        await session.commit()
    # Not only QUEUED: an unflagged row the operator has moved on (RUNNING) has a resource
    # (stored by a create whose answer was lost); the create's 409 flags it.
    if generation is None or generation.resource_created or generation.status in TERMINAL_STATUSES:
        return generation
    try:
        created = await ctx.kube.create(generation, owner.username if owner else None)
    except InvalidResource as exc:
        return await _reject(ctx, generation_id, str(exc))
    except ApiserverUnavailable as exc:
        log.warning(
            "generation %s: resource not created yet (%s); the outbox retries", generation.id, exc
        )
        return generation
    sent_cancel = created and generation.cancel_requested  # created with spec.cancel=true
    async with ctx.sessions() as session:
        current = await generations.lock(session, generation_id)
        if current is None:
            return None
        current.resource_created = True
        if sent_cancel and current.cancel_delivered_at is None:
            current.cancel_delivered_at = datetime.now(UTC)
        session.add(current)
        await session.commit()
    log.info(
        "generation %s: resource %s", generation_id, "created" if created else "already existed"
    )
    if current.cancel_requested and not sent_cancel:
        # The resource may predate the cancel (cancel: false): tell it now.
        await deliver_cancel(ctx, generation_id)
    return current


async def _reject(ctx: AppContext, generation_id: uuid.UUID, error: str) -> Generation | None:
    async with ctx.sessions() as session:
        generation = await generations.lock(session, generation_id)
        if (
            generation is None
            or generation.resource_created
            or generation.status in TERMINAL_STATUSES
        ):
            await session.commit()
            return generation
        generations.finish_before_creation(
            generation,
            GenerationStatus.REJECTED,
            REJECTED_REASON,
            f"The request was rejected: {error}",
        )
        session.add(generation)
        await budgets.release(session, generation)  # it never reached a provider
        await session.commit()
    log.warning("generation %s rejected by the apiserver: %s", generation_id, error)
    await nats_stream.publish_transition(ctx.js, generation)
    return generation


async def deliver_cancel(ctx: AppContext, generation_id: uuid.UUID) -> bool:
    """Set spec.cancel=true on the generation's (created) resource and record it; False if the
    apiserver could not be reached (the outbox tries again)."""
    try:
        found = await ctx.kube.request_cancel(generation_id)
    except ApiserverUnavailable as exc:
        log.warning(
            "generation %s: cancel not delivered yet (%s); the outbox retries", generation_id, exc
        )
        return False
    if not found:
        # Deleted by hand (its Job went with it, by owner reference): nothing to tell, and
        # re-sending on every pass would never change that.
        log.warning(
            "generation %s: its resource is gone; the cancel has nothing to reach", generation_id
        )
    async with ctx.sessions() as session:
        await generations.mark_cancel_delivered(session, generation_id)
        await session.commit()
    return True


async def reconcile_once(ctx: AppContext) -> int:
    """One pass; returns how many generations got their resource."""
    settings = ctx.settings
    async with ctx.sessions() as session:
        pending = await generations.pending_resource_ids(
            session, settings.outbox_grace_seconds, settings.outbox_batch_size
        )
        cancels = await generations.pending_cancel_ids(
            session, settings.outbox_grace_seconds, settings.outbox_batch_size
        )
    done = 0
    for generation_id in pending:
        generation = await ensure_resource(ctx, generation_id)
        if generation is not None and generation.resource_created:
            done += 1
    for generation_id in cancels:
        await deliver_cancel(ctx, generation_id)
    if done:
        log.info("outbox: created %d resource(s)", done)
    return done


async def run(ctx: AppContext) -> None:
    """Reconcile every settings.outbox_interval_seconds until cancelled."""
    while True:
        try:
            await reconcile_once(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("outbox pass failed; retrying")
        await asyncio.sleep(ctx.settings.outbox_interval_seconds)
