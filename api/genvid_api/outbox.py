"""The outbox: every job row gets its VideoGeneration, even if the api died in between.

POST /generate commits the row (resource_created=false) before it creates the resource, then
sets the flag. If the process dies, or the apiserver is unreachable, in between, the row stays
unflagged; the reconciler loop here finds such rows once they are older than a grace period
and creates their resources. The row lock (SELECT ... FOR UPDATE) serializes the request path,
the reconciler of every api replica and cancellation, and creating is idempotent (409 is
success), so a resource is never made twice.

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

from genvid_api import budgets, events, jobs
from genvid_api.context import AppContext
from genvid_api.kube import InvalidResource, KubeUnavailable
from genvid_api.models import TERMINAL_STATUSES, JobStatus, VideoGenerationJob

log = logging.getLogger(__name__)

REJECTED_REASON = "InvalidSpec"


async def ensure_resource(
    ctx: AppContext, job_id: uuid.UUID, *, skip_locked: bool = False
) -> VideoGenerationJob | None:
    """Create the job's resource unless done; returns the job as it is afterwards.

    A job with `cancel_requested` gets its resource created canceled, or, if the resource
    already existed (made by an earlier create whose answer was lost), spec.cancel patched.
    A resource the apiserver refuses as invalid will never be accepted: the job becomes
    REJECTED (published like an operator transition). Unreachable apiserver: the row stays
    pending for the next pass.
    """
    async with ctx.sessions() as session:
        job = await jobs.lock(session, job_id, skip_locked=skip_locked)
        # Not only QUEUED: an unflagged row the operator has moved on (RUNNING) has a resource
        # (stored by a create whose answer was lost); the create's 409 flags it.
        if job is None or job.resource_created or job.status in TERMINAL_STATUSES:
            # Commit, not rollback: ends the transaction without expiring the loaded job.
            await session.commit()
            return job
        try:
            created = await ctx.kube.create(job)
        except InvalidResource as exc:
            jobs.finish_before_creation(
                job, JobStatus.REJECTED, REJECTED_REASON, f"The request was rejected: {exc}"
            )
            session.add(job)
            await budgets.release(session, job)  # it never reached a provider
            await session.commit()
            log.warning("job %s rejected by the apiserver: %s", job.id, exc)
            await events.publish_transition(ctx.js, job)
            return job
        except KubeUnavailable as exc:
            await session.commit()  # nothing changed; releases the row lock
            log.warning("job %s: resource not created yet (%s); the outbox retries", job.id, exc)
            return job
        job.resource_created = True
        if created and job.cancel_requested:
            job.cancel_delivered_at = datetime.now(UTC)  # created with spec.cancel=true
        session.add(job)
        await session.commit()
    log.info("job %s: resource %s", job.id, "created" if created else "already existed")
    if job.cancel_requested and not created:
        # It may predate the cancel (cancel: false): tell it now.
        await deliver_cancel(ctx, job.id)
    return job


async def deliver_cancel(ctx: AppContext, job_id: uuid.UUID) -> bool:
    """Set spec.cancel=true on the job's (created) resource and record it; False if the
    apiserver could not be reached (the outbox tries again)."""
    try:
        found = await ctx.kube.request_cancel(job_id)
    except KubeUnavailable as exc:
        log.warning("job %s: cancel not delivered yet (%s); the outbox retries", job_id, exc)
        return False
    if not found:
        # Deleted by hand (its Job went with it, by owner reference): nothing to tell, and
        # re-sending on every pass would never change that.
        log.warning("job %s: its resource is gone; the cancel has nothing to reach", job_id)
    async with ctx.sessions() as session:
        await jobs.mark_cancel_delivered(session, job_id)
        await session.commit()
    return True


async def reconcile_once(ctx: AppContext) -> int:
    """One pass; returns how many jobs got their resource."""
    settings = ctx.settings
    async with ctx.sessions() as session:
        pending = await jobs.pending_resource_ids(
            session, settings.outbox_grace_seconds, settings.outbox_batch_size
        )
        cancels = await jobs.pending_cancel_ids(
            session, settings.outbox_grace_seconds, settings.outbox_batch_size
        )
    done = 0
    for job_id in pending:
        job = await ensure_resource(ctx, job_id, skip_locked=True)
        if job is not None and job.resource_created:
            done += 1
    for job_id in cancels:
        await deliver_cancel(ctx, job_id)
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
