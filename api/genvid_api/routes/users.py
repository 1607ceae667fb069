"""The signed-in user (`/me`), profiles, follows and the follower lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from genvid_api import cursors, follows, users, videos
from genvid_api.deps import AUTH_RESPONSES, Ctx, CurrentUser, Responses, SessionDep, error
from genvid_api.models import (
    USERNAME_PATTERN,
    FollowPage,
    FollowState,
    Me,
    Profile,
    User,
    UserPublic,
    VideoPage,
)
from genvid_api.views import present_videos

router = APIRouter(tags=["users"], responses=AUTH_RESPONSES)

UsernamePath = Annotated[
    str, Path(pattern=USERNAME_PATTERN, description="Case-insensitive", examples=["ada"])
]
_USER_NOT_FOUND = error("No such user")
_BAD_PAGE: Responses = {422: {"description": "Bad username, limit or cursor"}}


async def _user(session: SessionDep, username: str) -> User:
    found = await users.get_active_by_username(session, username)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="User not found")
    return found


@router.get("/me", response_model=Me)
async def me(user: CurrentUser, session: SessionDep) -> Me:
    """The signed-in user (with their email) and their follower, following and video counts."""
    counts = await videos.counts(session, user.id)
    return Me(**UserPublic.model_validate(user).model_dump(), **counts.model_dump())


async def _video_page(
    ctx: Ctx, session: SessionDep, viewer: User, author: User, limit: int | None, cursor: str | None
) -> VideoPage:
    after = cursors.decode_or_422(cursor)
    rows, next_cursor = await videos.user_videos(
        session, viewer.id, author.id, limit or ctx.settings.list_limit_default, after
    )
    await session.commit()  # give the connection back before signing
    items = await present_videos(rows, viewer.id, ctx.signer, ctx.settings)
    return VideoPage(items=items, next_cursor=next_cursor)


@router.get(
    "/users/{username}", response_model=Profile, responses={404: _USER_NOT_FOUND, **_BAD_PAGE}
)
async def profile(
    username: UsernamePath,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    limit: cursors.LimitQuery = None,
) -> Profile:
    """A user's page: counts, whether I follow them, and their newest videos (more with
    `GET /users/{username}/videos?cursor=`)."""
    author = await _user(session, username)
    counts = await videos.counts(session, author.id)
    followed = await follows.is_following(session, user.id, author.id)
    page = await _video_page(ctx, session, user, author, limit, None)
    return Profile(
        id=author.id,
        username=author.username,
        created_at=author.created_at,
        followed_by_me=followed,
        videos=page,
        **counts.model_dump(),
    )


@router.get(
    "/users/{username}/videos",
    response_model=VideoPage,
    responses={404: _USER_NOT_FOUND, **_BAD_PAGE},
)
async def user_videos(
    username: UsernamePath,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    limit: cursors.LimitQuery = None,
    cursor: cursors.CursorQuery = None,
) -> VideoPage:
    """A user's published videos, newest first."""
    author = await _user(session, username)
    return await _video_page(ctx, session, user, author, limit, cursor)


async def _set_following(
    session: SessionDep, user: CurrentUser, username: str, following: bool
) -> FollowState:
    followee = await _user(session, username)
    if followee.id == user.id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["path", "username"],
                    "msg": "you cannot follow yourself",
                    "type": "self_follow",
                }
            ],
        )
    try:
        count = await follows.set_following(session, user.id, followee.id, following)
    except follows.UserGone:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="User not found") from None
    return FollowState(username=followee.username, following=following, follower_count=count)


_FOLLOW_RESPONSES: Responses = {
    404: _USER_NOT_FOUND,
    422: {"description": "Bad username, or it is yours (nobody follows themselves)"},
}


@router.put("/users/{username}/follow", response_model=FollowState, responses=_FOLLOW_RESPONSES)
async def follow(username: UsernamePath, user: CurrentUser, session: SessionDep) -> FollowState:
    """Follow (idempotent)."""
    return await _set_following(session, user, username, True)


@router.delete("/users/{username}/follow", response_model=FollowState, responses=_FOLLOW_RESPONSES)
async def unfollow(username: UsernamePath, user: CurrentUser, session: SessionDep) -> FollowState:
    """Unfollow (idempotent)."""
    return await _set_following(session, user, username, False)


@router.get(
    "/users/{username}/followers",
    response_model=FollowPage,
    responses={404: _USER_NOT_FOUND, **_BAD_PAGE},
)
async def followers(
    username: UsernamePath,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    limit: cursors.LimitQuery = None,
    cursor: cursors.CursorQuery = None,
) -> FollowPage:
    """Who follows them, most recent first."""
    after = cursors.decode_or_422(cursor)
    subject = await _user(session, username)
    items, next_cursor = await follows.followers(
        session, subject.id, limit or ctx.settings.list_limit_default, after
    )
    return FollowPage(items=items, next_cursor=next_cursor)


@router.get(
    "/users/{username}/following",
    response_model=FollowPage,
    responses={404: _USER_NOT_FOUND, **_BAD_PAGE},
)
async def following(
    username: UsernamePath,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    limit: cursors.LimitQuery = None,
    cursor: cursors.CursorQuery = None,
) -> FollowPage:
    """Whom they follow, most recent first."""
    after = cursors.decode_or_422(cursor)
    subject = await _user(session, username)
    items, next_cursor = await follows.following(
        session, subject.id, limit or ctx.settings.list_limit_default, after
    )
    return FollowPage(items=items, next_cursor=next_cursor)
