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


async def _taken(session: AsyncSession, data: UserCreate) -> tuple[bool, bool]:
    """Whether the email and whether the username are already someone's."""
    result = await session.exec(
        select(User.email, User.username).where(
            sa.or_(
                sa.func.lower(col(User.email)) == data.email.lower(),
                sa.func.lower(col(User.username)) == data.username.lower(),
            )
        )
    )
    rows = result.all()
    email = any(row[0].lower() == data.email.lower() for row in rows)
    username = any(row[1].lower() == data.username.lower() for row in rows)
    return email, username


async def create(session: AsyncSession, data: UserCreate, hashed_password: str) -> User | None:
    """Insert and commit; Conflict if the username is taken (usernames are public), None if
    the email is already registered (nothing is inserted; the caller must not say so)."""
    email_taken, username_taken = await _taken(session, data)
    if username_taken:
        raise Conflict("username is taken")
    if email_taken:
        return None
    user = User(email=data.email, username=data.username, hashed_password=hashed_password)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        # Another request registered the same name between the check and the insert.
        await session.rollback()
        email_taken, username_taken = await _taken(session, data)
        if username_taken or not email_taken:
            raise Conflict("username is taken") from None
        return None
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
