"""The signed-in user (`/me`), profiles, follows and the follower lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from genvid_api.deps import Ctx, CurrentUser, SessionDep
from genvid_api.errors import AUTH_RESPONSES, Invalid, NotFound, responses
from genvid_api.models import (
    USERNAME_PATTERN,
    FollowState,
    FollowUser,
    Me,
    Page,
    Profile,
    User,
    UserPublic,
    VideoPublic,
)
from genvid_api.pagination import Limit, PageParams, PageRequest
from genvid_api.queries import follows, users, videos
from genvid_api.views import video_page

router = APIRouter(tags=["users"], responses=AUTH_RESPONSES)

UsernamePath = Annotated[
    str, Path(pattern=USERNAME_PATTERN, description="Case-insensitive", examples=["ada"])
]
_LISTING = responses((NotFound, "No such user"), (Invalid, "Bad username, limit or cursor"))
_FOLLOW = responses(
    (NotFound, "No such user"),
    (Invalid, "Bad username, or it is yours (nobody follows themselves)"),
)


async def _user(session: SessionDep, username: str) -> User:
    found = await users.get_active_by_username(session, username)
    if found is None:
        raise NotFound("User")
    return found


@router.get("/me", response_model=Me)
async def me(user: CurrentUser, session: SessionDep) -> Me:
    """The signed-in user (with their email) and their follower, following and video counts."""
    counts = await videos.counts(session, user.id)
    return Me(**UserPublic.model_validate(user).model_dump(), **counts.model_dump())


@router.get("/users/{username}", response_model=Profile, responses=_LISTING)
async def profile(
    username: UsernamePath, user: CurrentUser, limit: Limit, session: SessionDep, ctx: Ctx
) -> Profile:
    """A user's page: counts, whether I follow them, and their newest videos (more with
    `GET /users/{username}/videos?cursor=`)."""
    author = await _user(session, username)
    counts = await videos.counts(session, author.id)
    followed = await follows.is_following(session, user.id, author.id)
    found = await videos.user_videos(session, user.id, author.id, PageRequest(limit))
    return Profile(
        id=author.id,
        username=author.username,
        created_at=author.created_at,
        followed_by_me=followed,
        videos=await video_page(ctx, session, user.id, found),
        **counts.model_dump(),
    )


@router.get("/users/{username}/videos", response_model=Page[VideoPublic], responses=_LISTING)
async def user_videos(
    username: UsernamePath, user: CurrentUser, page: PageParams, session: SessionDep, ctx: Ctx
) -> Page[VideoPublic]:
    """A user's published videos, newest first."""
    author = await _user(session, username)
    found = await videos.user_videos(session, user.id, author.id, page)
    return await video_page(ctx, session, user.id, found)


async def _set_following(
    session: SessionDep, user: CurrentUser, username: str, following: bool
) -> FollowState:
    followee = await _user(session, username)
    if followee.id == user.id:
        raise Invalid.field(("path", "username"), "you cannot follow yourself", "self_follow")
    count = await follows.set_following(session, user.id, followee.id, following)
    return FollowState(username=followee.username, following=following, follower_count=count)


@router.put("/users/{username}/follow", response_model=FollowState, responses=_FOLLOW)
async def follow(username: UsernamePath, user: CurrentUser, session: SessionDep) -> FollowState:
    """Follow (idempotent)."""
    return await _set_following(session, user, username, True)


@router.delete("/users/{username}/follow", response_model=FollowState, responses=_FOLLOW)
async def unfollow(username: UsernamePath, user: CurrentUser, session: SessionDep) -> FollowState:
    """Unfollow (idempotent)."""
    return await _set_following(session, user, username, False)


@router.get("/users/{username}/followers", response_model=Page[FollowUser], responses=_LISTING)
async def followers(
    username: UsernamePath, user: CurrentUser, page: PageParams, session: SessionDep
) -> Page[FollowUser]:
    """Who follows them, most recent first."""
    subject = await _user(session, username)
    return Page[FollowUser].of(await follows.followers(session, subject.id, page))


@router.get("/users/{username}/following", response_model=Page[FollowUser], responses=_LISTING)
async def following(
    username: UsernamePath, user: CurrentUser, page: PageParams, session: SessionDep
) -> Page[FollowUser]:
    """Whom they follow, most recent first."""
    subject = await _user(session, username)
    return Page[FollowUser].of(await follows.following(session, subject.id, page))
