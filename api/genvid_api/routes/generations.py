"""POST /generate, reading generations, and cancelling one."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, status

from genvid_api import guardrails, outbox
from genvid_api.deps import Ctx, CurrentUser, SessionDep
from genvid_api.errors import AUTH_RESPONSES, Conflict, Invalid, NotFound, responses
from genvid_api.models import GenerationCreate, GenerationPublic, Page
from genvid_api.pagination import PageParams
from genvid_api.queries import generations
from genvid_api.views import present_generation, present_generations
from genvid_contracts.status import TERMINAL_STATUSES

router = APIRouter(tags=["generations"], responses=AUTH_RESPONSES)

# Printable ASCII without spaces at the ends; the CRD allows 255 characters.
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$")

_NOT_FOUND = (NotFound, "No such generation (or not yours)")


@router.post(
    "/generate",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(
        (
            Invalid,
            "Invalid request (prompt empty, blank, over 2000 characters or with control "
            "characters; unknown model; bad duration, aspect ratio or deadline), or an "
            "Idempotency-Key already used by this user for a different request",
        )
    )
    | guardrails.GENERATE_RESPONSES,
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
        raise Invalid.field(
            ("body", "model"),
            f"unknown model; known models: {', '.join(settings.models)}",
            "unknown_model",
            input=model,
        )
    deadline = body.deadline_seconds
    if deadline is not None and not (
        settings.min_deadline_seconds <= deadline <= settings.max_deadline_seconds
    ):
        raise Invalid.field(
            ("body", "deadline_seconds"),
            f"must be from {settings.min_deadline_seconds} to {settings.max_deadline_seconds} "
            "seconds",
            "deadline_out_of_range",
            input=deadline,
        )
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise Invalid.field(
            ("header", "Idempotency-Key"),
            "must be 1-255 printable ASCII characters",
            "invalid_idempotency_key",
        )
    request = body.model_copy(update={"model": model})
    await guardrails.count_request(session, settings, user.id, moment)
    generation = await generations.insert(
        session, user.id, request, idempotency_key, guardrails.reservation(session, ctx, moment)
    )
    # The row is committed: from here on a crash loses nothing (the outbox creates the resource).
    current = await outbox.ensure_resource(ctx, generation.id)
    return await present_generation(ctx, current or generation)


@router.get(
    "/generations",
    responses=responses((Invalid, "Bad limit or cursor")),
)
async def list_generations(
    user: CurrentUser, page: PageParams, session: SessionDep, ctx: Ctx
) -> Page[GenerationPublic]:
    """The caller's generations, newest first."""
    rows, next_cursor = await generations.list_owned(session, user.id, page)
    items = await present_generations(ctx, rows)
    return Page[GenerationPublic](items=items, next_cursor=next_cursor)


@router.get(
    "/generations/{generation_id}",
    responses=responses(_NOT_FOUND),
)
async def get_generation(
    generation_id: uuid.UUID, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> GenerationPublic:
    """One generation; once SUCCEEDED, with `video_url`/`poster_url` signed for a short while."""
    generation = await generations.get_owned(session, user.id, generation_id)
    if generation is None:
        raise NotFound("Generation")
    return await present_generation(ctx, generation)


@router.post(
    "/generations/{generation_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(_NOT_FOUND, (Conflict, "The generation already finished")),
)
async def cancel_generation(
    generation_id: uuid.UUID, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> GenerationPublic:
    """Ask for cancellation (one-way). The generation's resource gets spec.cancel=true (if it
    was not created yet, it is created so) and the operator stops it: `status` moves on
    later, published like every transition."""
    generation = await generations.lock(session, generation_id, user_id=user.id)
    if generation is None:
        raise NotFound("Generation")
    if generation.status in TERMINAL_STATUSES:
        raise Conflict(f"Generation already finished ({generation.status})")
    generations.request_cancel(generation)
    session.add(generation)
    await session.commit()  # the request's connection goes back to the pool here
    if generation.resource_created:
        await outbox.deliver_cancel(ctx, generation.id)
    else:
        # Maybe there, maybe not (a create whose answer was lost may have been stored):
        # create it canceled, or patch the one found.
        generation = await outbox.ensure_resource(ctx, generation.id) or generation
    return await present_generation(ctx, generation)
