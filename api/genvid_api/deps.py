"""Dependencies, as Annotated aliases: `Ctx`, `SettingsDep`, `SessionDep`, `AccessClaims`,
`CurrentUser`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.config import Settings
from genvid_api.context import AppContext
from genvid_api.errors import Unauthorized
from genvid_api.models import User
from genvid_api.queries import users
from genvid_api.security import InvalidToken, TokenClaims, TokenType, decode_token

# auto_error=False: the 401 (with its WWW-Authenticate header) is raised below, in one place.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_context)]


def get_settings(ctx: Ctx) -> Settings:
    return ctx.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    async with ctx.sessions() as session:
        yield session


# scope="function": the session closes when the endpoint returns, not when a (streaming)
# response ends, so an SSE connection never pins a database connection.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_access_claims(
    settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> TokenClaims:
    if not token:
        raise Unauthorized("Not authenticated", error=None)
    try:
        return decode_token(settings, token, TokenType.ACCESS)
    except InvalidToken:
        raise Unauthorized("Invalid or expired access token") from None


# What the access token says (its expiry, its session): decoded once per request.
AccessClaims = Annotated[TokenClaims, Depends(get_access_claims)]


async def get_current_user(session: SessionDep, claims: AccessClaims) -> User:
    user = await users.get_active(session, claims.user_id)
    # A token of an ended session (logged out everywhere, password changed) proves nothing.
    if user is None or user.session_version != claims.session_version:
        raise Unauthorized("Invalid or expired access token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
