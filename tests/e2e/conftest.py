"""Fixtures of the end-to-end tests: a client of a running api, and a database of the
pipeline's own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support.api import ApiClient, api_http_client
from support.database import scratch_database


@pytest.fixture
async def stack_api(stack_env: dict[str, str]) -> AsyncIterator[ApiClient]:
    """The stack's own api, as `make dev` runs it."""
    async with api_http_client(stack_env["GENVID_API_URL"]) as http:
        yield ApiClient(http=http)


@pytest.fixture(scope="module")
async def pipeline_database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    """A database of the pipeline's own: another api's outbox must not adopt its rows."""
    async with scratch_database(stack_env, "genvid_e2e") as url:
        yield url
