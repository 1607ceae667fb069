"""Published videos: publish, read, unpublish; likes; comments.

Status codes: 404 for what the caller must not know exists (someone else's generation, a video
that is not published); 403 where the object is public but the action is not the caller's
(unpublishing someone else's video, editing someone else's comment); 409 for states that forbid
the action (publishing a generation twice, or one that has not SUCCEEDED).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Response, status

from genvid_api import comments, cursors, likes, videos
from genvid_api.deps import AUTH_RESPONSES, Ctx, CurrentUser, SessionDep, error
from genvid_api.models import (
    CommentCreate,
    CommentPage,
    CommentPublic,
    CommentUpdate,
    LikeState,
    VideoCreate,
    VideoPublic,
)
from genvid_api.views import present_videos

router = APIRouter(tags=["videos"], responses=AUTH_RESPONSES)

_VIDEO_NOT_FOUND = error("No such published video")
_COMMENT_NOT_FOUND = error("No such video, or no such comment on it")


def _video_not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail="Video not found")


async def _present_one(
    ctx: Ctx, session: SessionDep, user: CurrentUser, video_id: uuid.UUID
) -> VideoPublic:
    row = await videos.get_row(session, user.id, video_id)
    if row is None:
        raise _video_not_found()
    await session.commit()  # give the connection back before signing
    [item] = await present_videos([row], user.id, ctx.signer, ctx.settings)
    return item


@router.post(
    "/videos",
    status_code=status.HTTP_201_CREATED,
    response_model=VideoPublic,
    responses={
        404: error("No such generation (or not yours)"),
        409: error("The generation has not SUCCEEDED, or is already published"),
        422: {"description": "Invalid title (1-120 characters, not blank) or description"},
    },
)
async def publish(
    body: VideoCreate, user: CurrentUser, session: SessionDep, ctx: Ctx, response: Response
) -> VideoPublic:
    """Publish one of my SUCCEEDED generations: everyone signed in sees it in the feeds."""
    try:
        video_id = await videos.publish(session, user.id, body)
    except videos.GenerationNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Generation not found") from None
    except videos.NotPublishable as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    response.headers["Location"] = f"/videos/{video_id}"
    return await _present_one(ctx, session, user, video_id)


@router.get("/videos/{video_id}", response_model=VideoPublic, responses={404: _VIDEO_NOT_FOUND})
async def get_video(
    video_id: uuid.UUID, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> VideoPublic:
    return await _present_one(ctx, session, user, video_id)


@router.delete(
    "/videos/{video_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={403: error("Not your video"), 404: _VIDEO_NOT_FOUND},
)
async def unpublish(video_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    """Unpublish: the video leaves every feed at once, with its likes and comments. The
    generation (and its files) stay, private, and can be published again."""
    video = await videos.get_visible(session, video_id)
    if video is None:
        raise _video_not_found()
    if video.user_id != user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Only the owner can unpublish")
    await videos.delete(session, video_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _set_liked(
    session: SessionDep, user: CurrentUser, video_id: uuid.UUID, liked: bool
) -> LikeState:
    state = await likes.set_liked(session, user.id, video_id, liked)
    if state is None:
        raise _video_not_found()
    return state


@router.put("/videos/{video_id}/like", response_model=LikeState, responses={404: _VIDEO_NOT_FOUND})
async def like(video_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> LikeState:
    """Like (idempotent: liking again changes nothing)."""
    return await _set_liked(session, user, video_id, True)


@router.delete(
    "/videos/{video_id}/like", response_model=LikeState, responses={404: _VIDEO_NOT_FOUND}
)
async def unlike(video_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> LikeState:
    """Unlike (idempotent)."""
    return await _set_liked(session, user, video_id, False)


@router.get(
    "/videos/{video_id}/comments",
    response_model=CommentPage,
    responses={404: _VIDEO_NOT_FOUND, 422: {"description": "Bad limit or cursor"}},
)
async def list_comments(
    video_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    limit: cursors.LimitQuery = None,
    cursor: cursors.CursorQuery = None,
) -> CommentPage:
    """Oldest first."""
    after = cursors.decode_or_422(cursor)
    try:
        items, next_cursor = await comments.list_for_video(
            session, video_id, limit or ctx.settings.list_limit_default, after
        )
    except comments.VideoNotFound:
        raise _video_not_found() from None
    return CommentPage(items=items, next_cursor=next_cursor)


@router.post(
    "/videos/{video_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentPublic,
    responses={404: _VIDEO_NOT_FOUND, 422: {"description": "Body empty, blank or too long"}},
)
async def create_comment(
    video_id: uuid.UUID, body: CommentCreate, user: CurrentUser, session: SessionDep
) -> CommentPublic:
    try:
        return await comments.create(session, video_id, user, body.body)
    except comments.VideoNotFound:
        raise _video_not_found() from None


def _comment_errors(exc: Exception) -> HTTPException:
    if isinstance(exc, comments.NotAllowed):
        return HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc))
    if isinstance(exc, comments.VideoNotFound):
        return _video_not_found()
    return HTTPException(status.HTTP_404_NOT_FOUND, detail="Comment not found")


@router.patch(
    "/videos/{video_id}/comments/{comment_id}",
    response_model=CommentPublic,
    responses={403: error("Not your comment"), 404: _COMMENT_NOT_FOUND},
)
async def edit_comment(
    video_id: uuid.UUID,
    comment_id: uuid.UUID,
    body: CommentUpdate,
    user: CurrentUser,
    session: SessionDep,
) -> CommentPublic:
    """The author edits their comment (`edited_at` is set)."""
    try:
        return await comments.edit(session, video_id, comment_id, user, body.body)
    except (comments.VideoNotFound, comments.CommentNotFound, comments.NotAllowed) as exc:
        raise _comment_errors(exc) from None


@router.delete(
    "/videos/{video_id}/comments/{comment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={403: error("Neither your comment nor your video"), 404: _COMMENT_NOT_FOUND},
)
async def delete_comment(
    video_id: uuid.UUID, comment_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> Response:
    """The comment's author, or the video's owner, deletes it."""
    try:
        await comments.delete(session, video_id, comment_id, user.id)
    except (comments.VideoNotFound, comments.CommentNotFound, comments.NotAllowed) as exc:
        raise _comment_errors(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
