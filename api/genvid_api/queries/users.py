"""Queries on users."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.errors import Conflict
from genvid_api.models import User, UserCreate


async def get_active(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    user = await session.get(User, user_id)
    return user if user is not None and user.is_active else None


async def get_by_login(session: AsyncSession, login: str) -> User | None:
    """By username (case-insensitive) or email."""
    login = login.strip().lower()
    if "\x00" in login:  # PostgreSQL text cannot hold NUL: no user has it
        return None
    result = await session.exec(
        select(User).where(
            sa.or_(
                sa.func.lower(col(User.username)) == login,
                sa.func.lower(col(User.email)) == login,
            )
        )
    )
    return result.first()


async def _taken(session: AsyncSession, data: UserCreate) -> Conflict | None:
    """What the client is told when the email or the username is already someone's."""
    result = await session.exec(
        select(User.email, User.username).where(
            sa.or_(
                sa.func.lower(col(User.email)) == data.email.lower(),
                sa.func.lower(col(User.username)) == data.username.lower(),
            )
        )
    )
    for email, _username in result:
        if email.lower() == data.email.lower():
            return Conflict("email is already registered")
        return Conflict("username is taken")
    return None


async def create(session: AsyncSession, data: UserCreate, hashed_password: str) -> User:
    """Insert and commit; Conflict naming the field already taken."""
    if taken := await _taken(session, data):
        raise taken
    user = User(email=data.email, username=data.username, hashed_password=hashed_password)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        # Another request registered the same name between the check and the insert.
        await session.rollback()
        raise await _taken(session, data) or Conflict("username is taken") from None
    await session.refresh(user)
    return user


async def update_password_hash(session: AsyncSession, user: User, hashed_password: str) -> None:
    user.hashed_password = hashed_password
    session.add(user)
    await session.commit()


async def get_active_by_username(session: AsyncSession, username: str) -> User | None:
    """Case-insensitive, as usernames are unique (uq_users_username_lower)."""
    if "\x00" in username:
        return None
    result = await session.exec(
        select(User).where(
            sa.func.lower(col(User.username)) == username.lower(), col(User.is_active).is_(True)
        )
    )
    return result.first()
