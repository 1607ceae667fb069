"""Fixtures of the api tests, all on the session's real stack.

Migrations run once per session on a database of the api tests' own, the api creates its
resources in one namespace no operator watches, and each test makes its own users.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import nats
import pytest
from nats.js import JetStreamContext

from genvid_api.config import Settings
from genvid_api.nats_stream import ensure_stream
from genvid_devstack import apps
from support.api import ApiClient, api_env, in_process_api, make_settings
from support.api_process import ApiProcess, start_api_process
from support.database import scratch_database
from support.kube import scratch_namespace


@pytest.fixture(scope="session")
async def api_database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    """A database of the api tests' own on the stack's server.

    Other apis run against the stack's database during the session (the stack's own, the
    pipeline tests'), each with an outbox that adopts any orphaned row: sharing that database
    would let them create these tests' resources in their namespaces, and the other way round.
    """
    async with scratch_database(stack_env, "genvid_api") as url:
        yield url


@pytest.fixture(scope="session")
def api_migrated(api_database: str) -> str:
    """`alembic upgrade head` once per session, as a deployment's migration job runs it."""
    apps.migrate({"DATABASE_URL": api_database})
    return api_database


@pytest.fixture(scope="session")
def api_namespace(stack_env: dict[str, str]) -> Iterator[str]:
    """The namespace the api creates VideoGenerations in (no operator watches it)."""
    with scratch_namespace(stack_env["KUBECONFIG"], "genvid-api") as name:
        yield name


@pytest.fixture(scope="session")
def api_settings(stack_env: dict[str, str], api_migrated: str, api_namespace: str) -> Settings:
    return make_settings(stack_env, api_migrated, api_namespace)


@pytest.fixture(scope="session")
async def api(api_settings: Settings) -> AsyncIterator[ApiClient]:
    async with in_process_api(api_settings) as client:
        yield client


@pytest.fixture(scope="session")
async def js(stack_env: dict[str, str]) -> AsyncIterator[JetStreamContext]:
    client = await nats.connect(stack_env["NATS_URL"], connect_timeout=5)
    context = client.jetstream()
    await ensure_stream(context)
    yield context
    await client.close()


@pytest.fixture(scope="session")
async def db(api_migrated: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(api_migrated, min_size=1, max_size=4)
    yield pool
    await pool.close()


StartApi = Callable[..., ApiProcess]


@pytest.fixture(scope="module")
def start_api(
    stack_env: dict[str, str],
    api_migrated: str,
    api_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StartApi]:
    """Starts api processes on the api tests' database and namespace (`start_api(name,
    GENVID_...=value)`); whatever a module started is stopped after it."""
    logs = tmp_path_factory.mktemp("api-logs")
    started: list[ApiProcess] = []

    def start(name: str, **overrides: str) -> ApiProcess:
        env = api_env(stack_env, api_migrated, api_namespace, **overrides)
        process = start_api_process(env, logs / f"{name}.log")
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()
