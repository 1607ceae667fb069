"""The async engine and sessions (SQLAlchemy with asyncpg, SQLModel sessions).

Every wait on Postgres is bounded (`database_timeout_seconds` to connect and per statement,
`database_pool_timeout_seconds` for a pooled connection): with the database down or frozen a
request fails within seconds, as a 503 (`errors.UNAVAILABLE_ERRORS`), instead of hanging on a
connection that never answers.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from genvid_api.config import Settings

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.async_database_url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_args={
            "server_settings": {"application_name": "genvid-api"},
            "timeout": settings.database_timeout_seconds,
            "command_timeout": settings.database_timeout_seconds,
        },
    )


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    # expire_on_commit=False: objects stay readable after commit without another round trip.
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
