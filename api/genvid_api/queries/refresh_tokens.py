"""Queries on refresh tokens and sessions: issue, rotate, revoke one, end them all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.config import Settings
from genvid_api.errors import Unauthorized
from genvid_api.models import RefreshToken, TokenPair, User
from genvid_api.security import (
    TokenClaims,
    create_access_token,
    create_refresh_token,
)


def _pair(settings: Settings, user: User, session: AsyncSession) -> tuple[TokenPair, RefreshToken]:
    access = create_access_token(settings, user.id, user.session_version)
    refresh = create_refresh_token(settings, user.id, user.session_version)
    row = RefreshToken(jti=refresh.jti, user_id=user.id, expires_at=refresh.expires_at)
    session.add(row)
    pair = TokenPair(
        access_token=access.token,
        refresh_token=refresh.token,
        expires_in=settings.access_token_ttl_seconds,
    )
    return pair, row


async def issue_pair(session: AsyncSession, settings: Settings, user: User) -> TokenPair:
    pair, _ = _pair(settings, user, session)
    await session.commit()
    return pair


async def _revoke_all(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def rotate(
    session: AsyncSession, settings: Settings, claims: TokenClaims, user: User
) -> TokenPair:
    """Revoke the presented token and issue a new pair, in one transaction.

    Unknown, expired or already used tokens are Unauthorized, as are tokens of an ended session
    version. A rotated token presented again means it leaked (or a client raced itself): every
    refresh token of the user is revoked, so whoever holds one must log in again. A token
    revoked by logging out is only refused.
    """
    now = datetime.now(UTC)
    row = (
        await session.exec(
            select(RefreshToken).where(RefreshToken.jti == claims.jti).with_for_update()
        )
    ).first()
    if (
        row is None
        or row.user_id != claims.user_id
        or row.expires_at <= now
        or claims.session_version != user.session_version
    ):
        await session.rollback()
        raise Unauthorized("Refresh token rejected: unknown or expired refresh token")
    if row.revoked_at is not None:
        if row.replaced_by is not None:  # rotated before: a replay; a logged-out one is not
            await _revoke_all(session, row.user_id, now)
            await session.commit()
        else:
            await session.rollback()
        raise Unauthorized("Refresh token rejected: refresh token was already used")
    pair, new_row = _pair(settings, user, session)
    row.revoked_at = now
    row.replaced_by = new_row.jti
    session.add(row)
    await session.commit()
    return pair


async def revoke(session: AsyncSession, claims: TokenClaims) -> None:
    """Log out one session: its refresh token is revoked (a no-op if it already was)."""
    await session.exec(
        update(RefreshToken)
        .where(
            col(RefreshToken.jti) == claims.jti,
            col(RefreshToken.user_id) == claims.user_id,
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    await session.commit()


async def end_all_sessions(session: AsyncSession, user: User, *, commit: bool = True) -> None:
    """Every refresh token revoked and the session version moved on, so that every access
    token (and event stream) of the user ends too; `commit=False` leaves the transaction open
    for the caller's own change (a new password) to join it."""
    await _revoke_all(session, user.id, datetime.now(UTC))
    # In SQL, not from the loaded row: two of these at once still end each other's sessions.
    moved = await session.exec(
        update(User)
        .where(col(User.id) == user.id)
        .values(session_version=col(User.session_version) + 1)
        .returning(col(User.session_version))
    )
    set_committed_value(user, "session_version", moved.one()[0])
    if commit:
        await session.commit()
