"""Webhook endpoints: register, list and delete them, rotate their secrets, and read their
recent deliveries.

The signing secret is in the answers of its creation and of its rotation only; GET never shows
it. Another user's endpoint is 404, as if it did not exist.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from genvid_api import webhooks
from genvid_api.deps import CurrentUser, SessionDep, SettingsDep
from genvid_api.errors import AUTH_RESPONSES, Conflict, Invalid, NotFound, responses
from genvid_api.models import (
    Page,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookPublic,
)
from genvid_api.pagination import PageParams
from genvid_api.queries import webhooks as queries

router = APIRouter(tags=["webhooks"], responses=AUTH_RESPONSES)

_NOT_FOUND = (NotFound, "No such webhook endpoint (or not yours)")


@router.post(
    "/webhooks",
    status_code=status.HTTP_201_CREATED,
    responses=responses(
        (Conflict, "The user has as many endpoints as allowed (GENVID_WEBHOOK_ENDPOINTS_PER_USER)"),
        (Invalid, "Not an absolute https URL, credentials in it, or a host that is not public"),
    ),
)
async def create_webhook(
    body: WebhookCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> WebhookCreated:
    """Register an endpoint told of every transition of my generations, signed as the
    Standard Webhooks specification says. Keep `secret`: it is never shown again."""
    url = webhooks.check_url(
        body.url,
        allow_insecure=settings.webhook_allow_insecure,
        allow_private=settings.webhook_allow_private_networks,
    )
    secret = webhooks.new_secret()
    endpoint = await queries.create(
        session, user.id, url, body.description, secret, settings.webhook_endpoints_per_user
    )
    response.headers["Location"] = f"/webhooks/{endpoint.id}"
    return WebhookCreated.model_validate(endpoint, from_attributes=True)


@router.get("/webhooks")
async def list_webhooks(
    user: CurrentUser, session: SessionDep, page: PageParams
) -> Page[WebhookPublic]:
    """My endpoints, oldest first (without their secrets)."""
    return Page[WebhookPublic].of(await queries.list_for_user(session, user.id, page))


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(_NOT_FOUND),
)
async def delete_webhook(webhook_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    """Delete an endpoint: its pending deliveries are dropped, nothing more is sent to it."""
    await queries.delete(session, user.id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/webhooks/{webhook_id}/rotate-secret", responses=responses(_NOT_FOUND))
async def rotate_webhook_secret(
    webhook_id: uuid.UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> WebhookCreated:
    """Give the endpoint a new secret, shown in this answer only. For
    `GENVID_WEBHOOK_SECRET_GRACE_SECONDS` the previous one signs every delivery too (two
    signatures in `webhook-signature`), so the receiver can be updated without refusing one;
    rotating again meanwhile drops the oldest."""
    endpoint = await queries.rotate(
        session, user.id, webhook_id, webhooks.new_secret(), settings.webhook_secret_grace_seconds
    )
    return WebhookCreated.model_validate(endpoint, from_attributes=True)


@router.get("/webhooks/{webhook_id}/deliveries", responses=responses(_NOT_FOUND))
async def list_deliveries(
    webhook_id: uuid.UUID, user: CurrentUser, session: SessionDep, page: PageParams
) -> Page[WebhookDeliveryPublic]:
    """The endpoint's messages, newest first, each with its latest attempt."""
    return Page[WebhookDeliveryPublic].of(
        await queries.deliveries(session, user.id, webhook_id, page)
    )
