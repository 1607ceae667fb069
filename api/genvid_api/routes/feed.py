"""The feeds: everyone's published videos, and those of the people I follow. Newest first."""

from __future__ import annotations

from fastapi import APIRouter

from genvid_api import cursors, videos
from genvid_api.deps import AUTH_RESPONSES, Ctx, CurrentUser, Responses, SessionDep
from genvid_api.models import VideoPage
from genvid_api.views import present_videos

router = APIRouter(prefix="/feed", tags=["feed"], responses=AUTH_RESPONSES)

_BAD_PAGE: Responses = {422: {"description": "Bad limit or cursor"}}


@router.get("", response_model=VideoPage, responses=_BAD_PAGE)
async def public_feed(
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    limit: cursors.LimitQuery = None,
    cursor: cursors.CursorQuery = None,
) -> VideoPage:
    """Every published video, newest first. Pages continue from `next_cursor` without
    duplicates or gaps while new videos are published (those appear at the top)."""
    after = cursors.decode_or_422(cursor)
    rows, next_cursor = await videos.public_feed(
        session, user.id, limit or ctx.settings.list_limit_default, after
    )
    await session.commit()  # give the connection back before signing
    items = await present_videos(rows, user.id, ctx.signer, ctx.settings)
    return VideoPage(items=items, next_cursor=next_cursor)


@router.get("/following", response_model=VideoPage, responses=_BAD_PAGE)
async def following_feed(
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    limit: cursors.LimitQuery = None,
    cursor: cursors.CursorQuery = None,
) -> VideoPage:
    """Videos of the people I follow, newest first; paginated like `/feed`."""
    after = cursors.decode_or_422(cursor)
    rows, next_cursor = await videos.following_feed(
        session, user.id, limit or ctx.settings.list_limit_default, after
    )
    await session.commit()  # give the connection back before signing
    items = await present_videos(rows, user.id, ctx.signer, ctx.settings)
    return VideoPage(items=items, next_cursor=next_cursor)
