"""Registration, login (OAuth2 password flow), refresh-token rotation, logging out, and the
password change.

Each is rate-limited in Postgres (shared by every api process, `genvid_api.ratelimit`): per
client address, and login per account *and* address, so that someone guessing from elsewhere
slows down only themselves and never locks the owner out. A limited request is 429 with
`Retry-After`, the end of its window: back off and try again, nothing stays locked.
`GENVID_RATE_LIMITS=off` turns the limits off (load tests from one address).

Registering an email that is already someone's answers exactly as a new one does, creating
nothing, so the endpoint does not tell who has an account.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api import ratelimit, security
from genvid_api.config import Settings
from genvid_api.deps import CurrentUser, SessionDep, SettingsDep
from genvid_api.errors import (
    AUTH_RESPONSES,
    Conflict,
    Invalid,
    TooManyRequests,
    Unauthorized,
    responses,
)
from genvid_api.models import (
    PasswordChange,
    RefreshRequest,
    TokenPair,
    UserCreate,
    UserPublic,
)
from genvid_api.queries import refresh_tokens, users
from genvid_api.ratelimit import Limit

router = APIRouter(prefix="/auth", tags=["auth"])

_LIMITED = (TooManyRequests, "Too many attempts; retry after Retry-After seconds")
_UNAUTHORIZED = responses((Unauthorized, "Bad credentials or refresh token"), _LIMITED)
_HOUR = 3600


def _address(request: Request) -> str:
    """The client's address; behind a proxy, the one it forwards, as far as uvicorn trusts
    it (`--forwarded-allow-ips`)."""
    return request.client.host if request.client else "unknown"


def _account(login: str) -> str:
    """A fixed-size key for whatever name was typed (existing or not: no oracle)."""
    return hashlib.sha256(login.strip().lower().encode()).hexdigest()[:32]


async def _limit(session: AsyncSession, settings: Settings, *limits: Limit) -> None:
    if not settings.rate_limits:
        return
    try:
        await ratelimit.hit_all(session, limits, datetime.now(UTC))
    except ratelimit.Limited as limited:
        raise TooManyRequests(
            "Too many attempts; retry later", retry_after=limited.retry_after
        ) from None


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=responses(
        (Conflict, "Username already taken"),
        (Invalid, "Invalid email or username, or weak password"),
        _LIMITED,
    ),
)
async def register(
    body: UserCreate, request: Request, session: SessionDep, settings: SettingsDep
) -> UserPublic:
    """An email that is already registered gets the same answer as a new one, and nothing is
    created: its owner signs in with it (`POST /auth/token` takes the email)."""
    await _limit(
        session,
        settings,
        Limit(f"register:{_address(request)}", settings.register_per_hour_per_ip, _HOUR),
    )
    if reason := body.weak_password_reason():
        raise Invalid.field(("body", "password"), reason, "weak_password")
    hashed = await security.hash_password(body.password)  # both ways: the same time
    user = await users.create(session, body, hashed)
    if user is None:
        return UserPublic(
            id=uuid.uuid4(), email=body.email, username=body.username, created_at=datetime.now(UTC)
        )
    return UserPublic.model_validate(user)


@router.post("/token", responses=_UNAUTHORIZED)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenPair:
    """OAuth2 password flow; `username` may be the username or the email."""
    address, account = _address(request), _account(form.username)
    await _limit(
        session,
        settings,
        Limit(f"login:{address}", settings.login_per_minute_per_ip),
        Limit(f"login:{account}:{address}", settings.login_per_minute_per_account),
        Limit(f"login-hour:{account}:{address}", settings.login_per_hour_per_account, _HOUR),
    )
    user = await users.get_by_login(session, form.username)
    valid = await security.verify_password(form.password, user.hashed_password if user else None)
    if user is None or not valid or not user.is_active:
        raise Unauthorized("Incorrect username or password", error=None)
    if security.needs_rehash(user.hashed_password):
        await users.update_password_hash(session, user, await security.hash_password(form.password))
    return await refresh_tokens.issue_pair(session, settings, user)


def _refresh_claims(settings: Settings, token: str) -> security.TokenClaims:
    try:
        return security.decode_token(settings, token, security.TokenType.REFRESH)
    except security.InvalidToken:
        raise Unauthorized("Invalid or expired refresh token") from None


@router.post("/refresh", responses=_UNAUTHORIZED)
async def refresh(
    body: RefreshRequest, request: Request, session: SessionDep, settings: SettingsDep
) -> TokenPair:
    """Rotate: the presented refresh token is revoked and a new pair issued.

    Presenting a revoked refresh token again revokes all of the user's refresh tokens.
    """
    await _limit(
        session, settings, Limit(f"refresh:{_address(request)}", settings.refresh_per_minute_per_ip)
    )
    claims = _refresh_claims(settings, body.refresh_token)
    await _limit(
        session, settings, Limit(f"refresh:{claims.user_id}", settings.refresh_per_minute_per_user)
    )
    user = await users.get_active(session, claims.user_id)
    if user is None:
        raise Unauthorized("Invalid or expired refresh token")
    return await refresh_tokens.rotate(session, settings, claims, user)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_UNAUTHORIZED,
)
async def logout(
    body: RefreshRequest, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """End this session: its refresh token is revoked (again: still 204). The access token
    issued with it lasts until it expires (minutes); `/auth/logout-all` ends those too."""
    await _limit(
        session, settings, Limit(f"refresh:{_address(request)}", settings.refresh_per_minute_per_ip)
    )
    await refresh_tokens.revoke(session, _refresh_claims(settings, body.refresh_token))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=AUTH_RESPONSES,
)
async def logout_all(user: CurrentUser, session: SessionDep) -> Response:
    """End every session of the caller at once: refresh tokens revoked, access tokens and
    event streams refused from now on (a lost device, a leaked token)."""
    await refresh_tokens.end_all_sessions(session, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    responses={
        **AUTH_RESPONSES,
        **responses((Invalid, "Wrong current password, or weak new password"), _LIMITED),
    },
)
async def change_password(
    body: PasswordChange, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> TokenPair:
    """Every session of the user ends (whoever else holds a token is out); the answer is a
    new session's tokens for the caller."""
    await _limit(
        session,
        settings,
        Limit(f"password:{user.id}", settings.login_per_minute_per_account),
        Limit(f"password-hour:{user.id}", settings.login_per_hour_per_account, _HOUR),
    )
    if not await security.verify_password(body.current_password, user.hashed_password):
        raise Invalid.field(
            ("body", "current_password"), "is not the current password", "wrong_password"
        )
    candidate = UserCreate.model_construct(
        email=user.email, username=user.username, password=body.new_password
    )
    if reason := candidate.weak_password_reason():
        raise Invalid.field(("body", "new_password"), reason, "weak_password")
    user.hashed_password = await security.hash_password(body.new_password)
    session.add(user)
    await refresh_tokens.end_all_sessions(session, user, commit=False)
    return await refresh_tokens.issue_pair(session, settings, user)
