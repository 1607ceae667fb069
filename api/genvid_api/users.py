"""Queries on users."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.models import User, UserCreate


class DuplicateUser(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


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


async def _taken(session: AsyncSession, data: UserCreate) -> str | None:
    result = await session.exec(
        select(User.email, User.username).where(
            sa.or_(
                sa.func.lower(col(User.email)) == data.email.lower(),
                sa.func.lower(col(User.username)) == data.username.lower(),
            )
        )
    )
    for email, _username in result:
        return "email" if email.lower() == data.email.lower() else "username"
    return None


async def create(session: AsyncSession, data: UserCreate, hashed_password: str) -> User:
    """Insert and commit; raises DuplicateUser naming the field already taken."""
    if field := await _taken(session, data):
        raise DuplicateUser(field)
    user = User(email=data.email, username=data.username, hashed_password=hashed_password)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        # Another request registered the same name between the check and the insert.
        await session.rollback()
        raise DuplicateUser(await _taken(session, data) or "username") from None
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
