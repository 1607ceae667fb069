"""Registration, login (OAuth2 password flow) and refresh-token rotation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from genvid_api import security
from genvid_api.deps import SessionDep, SettingsDep
from genvid_api.errors import Conflict, Invalid, Unauthorized, responses
from genvid_api.models import RefreshRequest, TokenPair, UserCreate, UserPublic
from genvid_api.queries import refresh_tokens, users

router = APIRouter(prefix="/auth", tags=["auth"])

_UNAUTHORIZED = responses((Unauthorized, "Bad credentials or refresh token"))


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses=responses(
        (Conflict, "Email or username already taken"),
        (Invalid, "Invalid email or username, or weak password"),
    ),
)
async def register(body: UserCreate, session: SessionDep) -> UserPublic:
    if reason := body.weak_password_reason():
        raise Invalid.field(("body", "password"), reason, "weak_password")
    hashed = await security.hash_password(body.password)
    user = await users.create(session, body, hashed)
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
        raise Unauthorized("Incorrect username or password", error=None)
    if security.needs_rehash(user.hashed_password):
        await users.update_password_hash(session, user, await security.hash_password(form.password))
    return await refresh_tokens.issue_pair(session, settings, user.id)


@router.post("/refresh", response_model=TokenPair, responses=_UNAUTHORIZED)
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """Rotate: the presented refresh token is revoked and a new pair issued.

    Presenting a revoked refresh token again revokes all of the user's refresh tokens.
    """
    try:
        claims = security.decode_token(settings, body.refresh_token, security.TokenType.REFRESH)
    except security.InvalidToken:
        raise Unauthorized("Invalid or expired refresh token") from None
    if await users.get_active(session, claims.user_id) is None:
        raise Unauthorized("Invalid or expired refresh token")
    return await refresh_tokens.rotate(session, settings, claims)
