"""The feeds: everyone's published videos, and those of the people I follow. Newest first."""

from __future__ import annotations

from fastapi import APIRouter

from genvid_api.deps import Ctx, CurrentUser, SessionDep
from genvid_api.errors import AUTH_RESPONSES, Invalid, responses
from genvid_api.models import Page, VideoPublic
from genvid_api.pagination import PageParams
from genvid_api.queries import videos
from genvid_api.views import video_page

router = APIRouter(
    prefix="/feed",
    tags=["feed"],
    responses={**AUTH_RESPONSES, **responses((Invalid, "Bad limit or cursor"))},
)


@router.get("", response_model=Page[VideoPublic])
async def public_feed(
    user: CurrentUser, page: PageParams, session: SessionDep, ctx: Ctx
) -> Page[VideoPublic]:
    """Every published video, newest first. Pages continue from `next_cursor` without
    duplicates or gaps while new videos are published (those appear at the top)."""
    found = await videos.public_feed(session, user.id, page)
    return await video_page(ctx, session, user.id, found)


@router.get("/following", response_model=Page[VideoPublic])
async def following_feed(
    user: CurrentUser, page: PageParams, session: SessionDep, ctx: Ctx
) -> Page[VideoPublic]:
    """Videos of the people I follow, newest first; paginated like `/feed`."""
    found = await videos.following_feed(session, user.id, page)
    return await video_page(ctx, session, user.id, found)
