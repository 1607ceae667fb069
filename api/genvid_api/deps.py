"""Dependencies, as Annotated aliases: `SessionDep`, `CurrentUser`, `Ctx`, `SettingsDep`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api import users
from genvid_api.config import Settings
from genvid_api.context import AppContext
from genvid_api.models import ErrorBody, User
from genvid_api.security import InvalidToken, TokenType, decode_token

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


def unauthorized(detail: str, *, error: str | None = "invalid_token") -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": challenge},
    )


async def get_current_user(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> User:
    if not token:
        raise unauthorized("Not authenticated", error=None)
    try:
        claims = decode_token(settings, token, TokenType.ACCESS)
    except InvalidToken:
        raise unauthorized("Invalid or expired access token") from None
    user = await users.get_active(session, claims.user_id)
    if user is None:
        raise unauthorized("Invalid or expired access token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def error(description: str) -> dict[str, Any]:
    """An OpenAPI `responses` entry for an error with a `{"detail": "..."}` body."""
    return {"description": description, "model": ErrorBody}


Responses = dict[int | str, dict[str, Any]]

# On every router whose routes take CurrentUser.
AUTH_RESPONSES: Responses = {401: error("Missing, invalid, expired or forged access token")}
