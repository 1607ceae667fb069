"""The outbox: every job row gets its VideoGeneration, even if the api died in between.

POST /generate commits the row (resource_created=false) before it creates the resource, then
sets the flag. If the process dies, or the apiserver is unreachable, in between, the row stays
unflagged; the reconciler loop here finds such rows once they are older than a grace period
and creates their resources. The row lock (SELECT ... FOR UPDATE) serializes the request path,
the reconciler of every api replica and cancellation, and creating is idempotent (409 is
success), so a resource is never made twice and a job canceled first is never started.

The loop also re-sends cancel requests whose patch may have been lost (a merge patch of
spec.cancel=true is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from genvid_api import events, jobs
from genvid_api.context import AppContext
from genvid_api.kube import InvalidResource, KubeUnavailable
from genvid_api.models import JobStatus, VideoGenerationJob

log = logging.getLogger(__name__)

REJECTED_REASON = "InvalidSpec"


async def ensure_resource(
    ctx: AppContext, job_id: uuid.UUID, *, skip_locked: bool = False
) -> VideoGenerationJob | None:
    """Create the job's resource unless done; returns the job as it is afterwards.

    A resource the apiserver refuses as invalid will never be accepted: the job becomes
    REJECTED (published like an operator transition). Unreachable apiserver: the row stays
    pending for the next pass.
    """
    async with ctx.sessions() as session:
        job = await jobs.lock(session, job_id, skip_locked=skip_locked)
        if job is None or job.resource_created or job.status != JobStatus.QUEUED:
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
            await session.commit()
            log.warning("job %s rejected by the apiserver: %s", job.id, exc)
            await events.publish_transition(ctx.js, job)
            return job
        except KubeUnavailable as exc:
            await session.commit()  # nothing changed; releases the row lock
            log.warning("job %s: resource not created yet (%s); the outbox retries", job.id, exc)
            return job
        job.resource_created = True
        session.add(job)
        await session.commit()
        log.info("job %s: resource %s", job.id, "created" if created else "already existed")
        return job


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
        try:
            await ctx.kube.request_cancel(job_id)
        except KubeUnavailable as exc:
            log.warning("job %s: cancel not delivered yet (%s)", job_id, exc)
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
