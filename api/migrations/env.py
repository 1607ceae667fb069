"""Alembic environment: async (asyncpg), URL from `-x url=` or the api's `DatabaseSettings`,
metadata from the models."""

from __future__ import annotations

import asyncio

from alembic import context
from pydantic import ValidationError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import genvid_api.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from genvid_api.config import DatabaseSettings, asyncpg_url

target_metadata = SQLModel.metadata


def _database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return asyncpg_url(url)
    try:
        return DatabaseSettings().async_database_url  # type: ignore[call-arg]  # from the env
    except ValidationError:
        raise RuntimeError("set GENVID_DATABASE_URL or DATABASE_URL (or pass -x url=...)") from None


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        # Two replicas migrating at once: the second waits, then finds nothing to do.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7395001)")
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
