"""Passwords (argon2id, bounded in memory) and tokens (JWT, HS256 only, with key ids).

Access tokens are short-lived and stateless. Refresh tokens are JWTs too, but each carries a
`jti` recorded in `refresh_tokens`: a refresh rotates it (the old one is revoked), and presenting
a revoked one again revokes every refresh token of that user (a stolen token was replayed).
Every token carries the user's `session_version` (`sv`): incrementing it (logging out
everywhere, changing the password) ends all of them at once.

Keys rotate without logging anyone out: tokens name their key in the header (`kid`); the
previous key, if configured, is still accepted until its grace period ends.

Password hashing is the one memory-hungry thing the api does. argon2-cffi's defaults (RFC
9106's low-memory profile) take 64 MiB per hash, and a burst of logins on the shared thread
pool would take the process past its memory limit (~8 parallel logins exceed 512 MiB). The
parameters are instead OWASP's argon2id profile of 19 MiB, 2 iterations, 1 lane (its equal-cost
alternatives trade memory for iterations), and at most `HASH_CONCURRENCY` hashes run at once in
a process, on threads of their own: hashing takes at most 2 x 19 MiB however many logins
arrive; the others wait their turn (and the auth rate limits keep that queue short). Their own
threads, not a limit on the shared pool: glibc keeps a freed 19 MiB block in the allocating
thread's arena for its next allocation, so hashes spread over many pool threads each left one
behind (50 logins: 60 to 116 MiB above the baseline, by which threads happened to run them).
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from genvid_api.config import Settings

ALGORITHM = "HS256"  # pinned: a token's own `alg` header never chooses the algorithm

# OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
HASH_MEMORY_KIB = 19 * 1024
HASH_ITERATIONS = 2
HASH_PARALLELISM = 1
HASH_CONCURRENCY = 2

_hasher = PasswordHasher(
    time_cost=HASH_ITERATIONS,
    memory_cost=HASH_MEMORY_KIB,
    parallelism=HASH_PARALLELISM,
    type=Type.ID,
)
# Not the shared thread pool's 40 threads: each hash holds HASH_MEMORY_KIB while it runs.
_hashing = ThreadPoolExecutor(max_workers=HASH_CONCURRENCY, thread_name_prefix="argon2")
# Verified when the user does not exist, so a login costs the same either way.
_DUMMY_HASH = _hasher.hash("genvid-dummy-password")


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hashing, _hasher.hash, password)


async def verify_password(password: str, hashed: str | None) -> bool:
    """Constant-ish time: with no hash, a dummy is verified and False returned."""

    def verify() -> bool:
        try:
            return _hasher.verify(hashed or _DUMMY_HASH, password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.get_running_loop().run_in_executor(_hashing, verify)


def needs_rehash(hashed: str) -> bool:
    """True for hashes made with other parameters (the library defaults, before): the next
    successful login stores one made with these."""
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
    session_version: int


def _issue(
    settings: Settings, user_id: uuid.UUID, session_version: int, kind: TokenType, ttl: int
) -> IssuedToken:
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=ttl)
    jti = uuid.uuid4()
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "sub": str(user_id),
        "type": kind.value,
        "jti": str(jti),
        "sv": session_version,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    token = jwt.encode(
        payload,
        settings.jwt_secret.get_secret_value(),
        algorithm=ALGORITHM,
        headers={"kid": settings.jwt_key_id},
    )
    return IssuedToken(token=token, jti=jti, expires_at=expires_at)


def create_access_token(
    settings: Settings, user_id: uuid.UUID, session_version: int = 0
) -> IssuedToken:
    return _issue(
        settings, user_id, session_version, TokenType.ACCESS, settings.access_token_ttl_seconds
    )


def create_refresh_token(
    settings: Settings, user_id: uuid.UUID, session_version: int = 0
) -> IssuedToken:
    return _issue(
        settings, user_id, session_version, TokenType.REFRESH, settings.refresh_token_ttl_seconds
    )


def _verification_key(settings: Settings, token: str) -> str:
    """The key the token's `kid` names: the current one (also for tokens without a `kid`,
    issued before keys had ids), or the previous one during its grace period."""
    kid = jwt.get_unverified_header(token).get("kid")
    if kid is None or kid == settings.jwt_key_id:
        return settings.jwt_secret.get_secret_value()
    previous = settings.jwt_previous_secret
    until = settings.jwt_previous_key_until
    if (
        previous is not None
        and kid == settings.jwt_previous_key_id
        and (until is None or datetime.now(UTC) < until)
    ):
        return previous.get_secret_value()
    raise InvalidToken("unknown or retired key id")


def decode_token(settings: Settings, token: str, expected: TokenType) -> TokenClaims:
    try:
        payload = jwt.decode(
            token,
            _verification_key(settings, token),
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "type", "jti", "iss"]},
        )
        if payload.get("type") != expected.value:
            raise InvalidToken(f"not an {expected.value} token")
        version = payload.get("sv", 0)
        if not isinstance(version, int):
            raise InvalidToken("malformed session version")
        return TokenClaims(
            user_id=uuid.UUID(str(payload["sub"])),
            jti=uuid.UUID(str(payload["jti"])),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            session_version=version,
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
