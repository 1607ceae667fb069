"""Queries on refresh tokens: issue, rotate, revoke."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.config import Settings
from genvid_api.errors import Unauthorized
from genvid_api.models import RefreshToken, TokenPair
from genvid_api.security import (
    TokenClaims,
    create_access_token,
    create_refresh_token,
)


def _pair(
    settings: Settings, user_id: uuid.UUID, session: AsyncSession
) -> tuple[TokenPair, uuid.UUID]:
    access = create_access_token(settings, user_id)
    refresh = create_refresh_token(settings, user_id)
    session.add(RefreshToken(jti=refresh.jti, user_id=user_id, expires_at=refresh.expires_at))
    pair = TokenPair(
        access_token=access.token,
        refresh_token=refresh.token,
        expires_in=settings.access_token_ttl_seconds,
    )
    return pair, refresh.jti


async def issue_pair(session: AsyncSession, settings: Settings, user_id: uuid.UUID) -> TokenPair:
    pair, _ = _pair(settings, user_id, session)
    await session.commit()
    return pair


async def rotate(session: AsyncSession, settings: Settings, claims: TokenClaims) -> TokenPair:
    """Revoke the presented token and issue a new pair, in one transaction.

    Unknown, expired or already used tokens are Unauthorized. A revoked token presented again
    means it leaked (or a client raced itself): every refresh token of the user is revoked, so
    whoever holds one must log in again.
    """
    now = datetime.now(UTC)
    row = (
        await session.exec(
            select(RefreshToken).where(RefreshToken.jti == claims.jti).with_for_update()
        )
    ).first()
    if row is None or row.user_id != claims.user_id or row.expires_at <= now:
        await session.rollback()
        raise Unauthorized("Refresh token rejected: unknown or expired refresh token")
    if row.revoked_at is not None:
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.user_id) == row.user_id, col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        await session.commit()
        raise Unauthorized("Refresh token rejected: refresh token was already used")
    pair, new_jti = _pair(settings, row.user_id, session)
    row.revoked_at = now
    row.replaced_by = new_jti
    session.add(row)
    await session.commit()
    return pair
