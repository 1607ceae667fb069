"""Published videos: publish, read, unpublish; likes; comments."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from genvid_api.deps import Ctx, CurrentUser, SessionDep
from genvid_api.errors import AUTH_RESPONSES, Conflict, Forbidden, Invalid, NotFound, responses
from genvid_api.models import (
    CommentCreate,
    CommentPublic,
    CommentUpdate,
    LikeState,
    Page,
    VideoCreate,
    VideoPublic,
)
from genvid_api.pagination import PageParams
from genvid_api.queries import comments, likes, videos
from genvid_api.views import present_videos

router = APIRouter(tags=["videos"], responses=AUTH_RESPONSES)

_VIDEO_NOT_FOUND = (NotFound, "No such published video")
_COMMENT_NOT_FOUND = (NotFound, "No such video, or no such comment on it")
_PUBLISH_ERRORS = responses(
    (NotFound, "No such generation (or not yours)"),
    (Conflict, "The generation has not SUCCEEDED, or is already published"),
    (Invalid, "Invalid title (1-120 characters, not blank) or description"),
)
_COMMENT_ERRORS = responses(_VIDEO_NOT_FOUND, (Invalid, "Body empty, blank or too long"))


async def _present_one(
    ctx: Ctx, session: SessionDep, user: CurrentUser, video_id: uuid.UUID
) -> VideoPublic:
    row = await videos.get_row(session, user.id, video_id)
    await session.commit()  # give the connection back before signing
    [item] = await present_videos(ctx, [row], user.id)
    return item


@router.post("/videos", status_code=status.HTTP_201_CREATED, responses=_PUBLISH_ERRORS)
async def publish(
    body: VideoCreate, user: CurrentUser, session: SessionDep, ctx: Ctx, response: Response
) -> VideoPublic:
    """Publish one of my SUCCEEDED generations: everyone signed in sees it in the feeds."""
    video_id = await videos.publish(session, user.id, body)
    response.headers["Location"] = f"/videos/{video_id}"
    return await _present_one(ctx, session, user, video_id)


@router.get("/videos/{video_id}", responses=responses(_VIDEO_NOT_FOUND))
async def get_video(
    video_id: uuid.UUID, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> VideoPublic:
    return await _present_one(ctx, session, user, video_id)


@router.delete(
    "/videos/{video_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses((Forbidden, "Not your video"), _VIDEO_NOT_FOUND),
)
async def unpublish(video_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    """Unpublish: the video leaves every feed at once, with its likes and comments. The
    generation (and its files) stay, private, and can be published again."""
    await videos.unpublish(session, video_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/videos/{video_id}/like", responses=responses(_VIDEO_NOT_FOUND))
async def like(video_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> LikeState:
    """Like (idempotent: liking again changes nothing)."""
    return await likes.set_liked(session, user.id, video_id, True)


@router.delete("/videos/{video_id}/like", responses=responses(_VIDEO_NOT_FOUND))
async def unlike(video_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> LikeState:
    """Unlike (idempotent)."""
    return await likes.set_liked(session, user.id, video_id, False)


@router.get(
    "/videos/{video_id}/comments",
    responses=responses(_VIDEO_NOT_FOUND, (Invalid, "Bad limit or cursor")),
)
async def list_comments(
    video_id: uuid.UUID, user: CurrentUser, page: PageParams, session: SessionDep
) -> Page[CommentPublic]:
    """Oldest first."""
    return Page[CommentPublic].of(await comments.list_for_video(session, video_id, page))


@router.post(
    "/videos/{video_id}/comments", status_code=status.HTTP_201_CREATED, responses=_COMMENT_ERRORS
)
async def create_comment(
    video_id: uuid.UUID, body: CommentCreate, user: CurrentUser, session: SessionDep
) -> CommentPublic:
    return await comments.create(session, video_id, user, body.body)


@router.patch(
    "/videos/{video_id}/comments/{comment_id}",
    responses=responses((Forbidden, "Not your comment"), _COMMENT_NOT_FOUND),
)
async def edit_comment(
    video_id: uuid.UUID,
    comment_id: uuid.UUID,
    body: CommentUpdate,
    user: CurrentUser,
    session: SessionDep,
) -> CommentPublic:
    """The author edits their comment (`edited_at` is set)."""
    return await comments.edit(session, video_id, comment_id, user, body.body)


@router.delete(
    "/videos/{video_id}/comments/{comment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses((Forbidden, "Neither your comment nor your video"), _COMMENT_NOT_FOUND),
)
async def delete_comment(
    video_id: uuid.UUID, comment_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> Response:
    """The comment's author, or the video's owner, deletes it."""
    await comments.delete(session, video_id, comment_id, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
