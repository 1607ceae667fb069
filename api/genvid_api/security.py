"""Passwords (argon2id) and tokens (JWT, HS256 only).

Access tokens are short-lived and stateless. Refresh tokens are JWTs too, but each carries a
`jti` recorded in `refresh_tokens`: a refresh rotates it (the old one is revoked), and presenting
a revoked one again revokes every refresh token of that user (a stolen token was replayed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from genvid_api.config import Settings

ALGORITHM = "HS256"  # pinned: a token's own `alg` header never chooses the algorithm

# argon2-cffi's defaults are RFC 9106's second recommended profile for argon2id.
_hasher = PasswordHasher()
# Verified when the user does not exist, so a login costs the same either way.
_DUMMY_HASH = _hasher.hash("genvid-dummy-password")


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password: str, hashed: str | None) -> bool:
    """Constant-ish time: with no hash, a dummy is verified and False returned."""

    def verify() -> bool:
        try:
            return _hasher.verify(hashed or _DUMMY_HASH, password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(verify)


def needs_rehash(hashed: str) -> bool:
    return _hasher.check_needs_rehash(hashed)


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class InvalidToken(Exception):
    """Missing, malformed, expired, wrongly signed or of the wrong type."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    jti: uuid.UUID
    expires_at: datetime


def _issue(settings: Settings, user_id: uuid.UUID, kind: TokenType, ttl: int) -> IssuedToken:
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=ttl)
    jti = uuid.uuid4()
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "sub": str(user_id),
        "type": kind.value,
        "jti": str(jti),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    token = jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)
    return IssuedToken(token=token, jti=jti, expires_at=expires_at)


def create_access_token(settings: Settings, user_id: uuid.UUID) -> IssuedToken:
    return _issue(settings, user_id, TokenType.ACCESS, settings.access_token_ttl_seconds)


def create_refresh_token(settings: Settings, user_id: uuid.UUID) -> IssuedToken:
    return _issue(settings, user_id, TokenType.REFRESH, settings.refresh_token_ttl_seconds)


def decode_token(settings: Settings, token: str, expected: TokenType) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "type", "jti", "iss"]},
        )
        if payload.get("type") != expected.value:
            raise InvalidToken(f"not an {expected.value} token")
        return TokenClaims(
            user_id=uuid.UUID(str(payload["sub"])),
            jti=uuid.UUID(str(payload["jti"])),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
