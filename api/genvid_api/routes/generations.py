"""POST /generate, reading generations, and cancelling one."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, status

from genvid_api import cursors, guardrails, jobs, outbox
from genvid_api.deps import AUTH_RESPONSES, Ctx, CurrentUser, SessionDep
from genvid_api.models import (
    TERMINAL_STATUSES,
    GenerationCreate,
    GenerationPage,
    GenerationPublic,
)
from genvid_api.views import present_job, present_many

router = APIRouter(tags=["generations"], responses=AUTH_RESPONSES)

# Printable ASCII without spaces at the ends; the CRD allows 255 characters.
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$")

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such generation (or not yours)"}
}


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail="Generation not found")


@router.post(
    "/generate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=GenerationPublic,
    responses={
        422: {
            "description": "Invalid request (prompt empty, blank, over 2000 characters or with "
            "control characters; unknown model; bad duration or aspect ratio), or an "
            "Idempotency-Key already used by this user for a different request"
        },
        **guardrails.GENERATE_RESPONSES,
    },
)
async def generate(
    body: GenerationCreate,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    moment: guardrails.Now,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Retrying with the same key returns the same generation (202) "
            "without creating another one; the same key with a different body is a 422.",
        ),
    ] = None,
) -> GenerationPublic:
    settings = ctx.settings
    model = body.model or settings.default_model
    if model not in settings.models:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", "model"],
                    "msg": f"unknown model; known models: {', '.join(settings.models)}",
                    "type": "unknown_model",
                    "input": model,
                }
            ],
        )
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "must be 1-255 printable ASCII characters",
                    "type": "invalid_idempotency_key",
                }
            ],
        )
    request = jobs.Request.from_body(body, model)
    await guardrails.count_request(session, settings, user.id, moment)
    try:
        job, _created = await jobs.insert(
            session, user.id, request, idempotency_key, guardrails.reservation(session, ctx, moment)
        )
    except jobs.IdempotencyMismatch:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="Idempotency-Key was already used with a different request",
        ) from None
    # The row is committed: from here on a crash loses nothing (the outbox finishes the job).
    current = await outbox.ensure_resource(ctx, job.id)
    return await present_job(current or job, ctx.signer, settings)


@router.get("/generations", response_model=GenerationPage)
async def list_generations(
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> GenerationPage:
    """The caller's generations, newest first."""
    rows, next_cursor = await jobs.list_owned(
        session, user.id, limit or ctx.settings.list_limit_default, cursors.decode_or_422(cursor)
    )
    return GenerationPage(
        items=await present_many(rows, ctx.signer, ctx.settings), next_cursor=next_cursor
    )


@router.get("/generations/{generation_id}", response_model=GenerationPublic, responses=_NOT_FOUND)
async def get_generation(
    generation_id: uuid.UUID, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> GenerationPublic:
    """One generation; once SUCCEEDED, with `video_url`/`poster_url` signed for a short while."""
    job = await jobs.get_owned(session, user.id, generation_id)
    if job is None:
        raise _not_found()
    return await present_job(job, ctx.signer, ctx.settings)


@router.post(
    "/generations/{generation_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=GenerationPublic,
    responses={**_NOT_FOUND, 409: {"description": "The generation already finished"}},
)
async def cancel_generation(
    generation_id: uuid.UUID, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> GenerationPublic:
    """Ask for cancellation (one-way). The generation's resource gets spec.cancel=true (if it
    was not created yet, it is created so) and the operator stops it: `status` moves on
    later, published like every transition."""
    job = await jobs.lock(session, generation_id, user_id=user.id)
    if job is None:
        await session.rollback()
        raise _not_found()
    if job.status in TERMINAL_STATUSES:
        await session.commit()  # read-only; keeps the loaded job readable
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"Generation already finished ({job.status})"
        )
    jobs.request_cancel(job)
    session.add(job)
    await session.commit()  # the request's connection goes back to the pool here
    if job.resource_created:
        await outbox.deliver_cancel(ctx, job.id)
    else:
        # Maybe there, maybe not (a create whose answer was lost may have been stored):
        # create it canceled, or patch the one found.
        job = await outbox.ensure_resource(ctx, job.id) or job
    return await present_job(job, ctx.signer, ctx.settings)
