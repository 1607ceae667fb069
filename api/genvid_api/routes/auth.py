"""Registration, login (OAuth2 password flow) and refresh-token rotation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from genvid_api import security, tokens, users
from genvid_api.deps import SessionDep, SettingsDep, unauthorized
from genvid_api.models import RefreshRequest, TokenPair, UserCreate, UserPublic

router = APIRouter(prefix="/auth", tags=["auth"])

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Bad credentials or refresh token"}
}


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses={
        409: {"description": "Email or username already taken"},
        422: {"description": "Invalid email or username, or weak password"},
    },
)
async def register(body: UserCreate, session: SessionDep) -> UserPublic:
    if reason := body.weak_password_reason():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["body", "password"], "msg": reason, "type": "weak_password"}],
        )
    hashed = await security.hash_password(body.password)
    try:
        user = await users.create(session, body, hashed)
    except users.DuplicateUser as exc:
        what = "email is already registered" if exc.field == "email" else "username is taken"
        raise HTTPException(status.HTTP_409_CONFLICT, detail=what) from None
    return UserPublic.model_validate(user)


@router.post("/token", response_model=TokenPair, responses=_UNAUTHORIZED)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> TokenPair:
    """OAuth2 password flow; `username` may be the username or the email."""
    user = await users.get_by_login(session, form.username)
    valid = await security.verify_password(form.password, user.hashed_password if user else None)
    if user is None or not valid or not user.is_active:
        raise unauthorized("Incorrect username or password", error=None)
    if security.needs_rehash(user.hashed_password):
        await users.update_password_hash(session, user, await security.hash_password(form.password))
    return await tokens.issue_pair(session, settings, user.id)


@router.post("/refresh", response_model=TokenPair, responses=_UNAUTHORIZED)
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """Rotate: the presented refresh token is revoked and a new pair issued.

    Presenting a revoked refresh token again revokes all of the user's refresh tokens.
    """
    try:
        claims = security.decode_token(settings, body.refresh_token, security.TokenType.REFRESH)
    except security.InvalidToken:
        raise unauthorized("Invalid or expired refresh token") from None
    if await users.get_active(session, claims.user_id) is None:
        raise unauthorized("Invalid or expired refresh token")
    try:
        return await tokens.rotate(session, settings, claims)
    except tokens.RefreshRejected as exc:
        raise unauthorized(f"Refresh token rejected: {exc}") from None
