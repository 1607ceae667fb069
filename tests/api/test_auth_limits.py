"""Rate limits on /auth: per address, and login per account *and* address, counted in Postgres
so that two api processes share them; 429 with Retry-After, and never a lock-out of the owner
from another address. Clients are told apart by X-Forwarded-For, which uvicorn takes from a
trusted proxy (127.0.0.1 by default), as it would behind the ingress."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from support.api import ApiClient, api_http_client
from support.api_process import ApiProcess

pytestmark = pytest.mark.stack

PER_IP, PER_ACCOUNT, REGISTER, REFRESH = 6, 3, 3, 4


@pytest.fixture(scope="module")
def servers(start_api: Callable[..., ApiProcess]) -> tuple[ApiProcess, ApiProcess]:
    limits = {
        "GENVID_RATE_LIMITS": "on",
        "GENVID_LOGIN_PER_MINUTE_PER_IP": str(PER_IP),
        "GENVID_LOGIN_PER_MINUTE_PER_ACCOUNT": str(PER_ACCOUNT),
        "GENVID_REGISTER_PER_HOUR_PER_IP": str(REGISTER),
        "GENVID_REFRESH_PER_MINUTE_PER_IP": str(REFRESH),
        "GENVID_OUTBOX_ENABLED": "false",
    }
    return start_api("limits-a", **limits), start_api("limits-b", **limits)


@pytest.fixture
async def clients(servers: tuple[ApiProcess, ApiProcess]) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Clients of both processes; the test starts early enough in a minute that its burst
    fits in one window."""
    if time.time() % 60 > 40:
        await asyncio.sleep(61 - time.time() % 60)
    a, b = servers
    async with api_http_client(a.url) as http_a, api_http_client(b.url) as http_b:
        yield [http_a, http_b]


def _from() -> dict[str, str]:
    """Headers of a client at an address of its own."""
    return {"X-Forwarded-For": f"10.{random.randrange(256)}.{random.randrange(256)}.7"}


def _user() -> dict[str, str]:
    name = f"lim{uuid.uuid4().hex[:10]}"
    return {"email": f"{name}@example.com", "username": name, "password": "Tr0ub4dor&3-horse"}


def _assert_limited(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= window
    assert response.json() == {"detail": "Too many attempts; retry later"}


async def test_a_guesser_is_limited_per_account_and_address_across_processes_not_the_owner(
    clients: list[httpx.AsyncClient],
) -> None:
    owner, guesser = _from(), _from()
    body = _user()
    assert (await clients[0].post("/auth/register", json=body, headers=owner)).status_code == 201
    wrong = {"username": body["username"], "password": "not-the-password"}
    for attempt in range(PER_ACCOUNT):
        response = await clients[attempt % 2].post("/auth/token", data=wrong, headers=guesser)
        assert response.status_code == 401, response.text
    right = {"username": body["username"], "password": body["password"]}
    for http in clients:
        _assert_limited(await http.post("/auth/token", data=wrong, headers=guesser), 60)
        # Even the right password waits at that address: the limit answers before any check.
        _assert_limited(await http.post("/auth/token", data=right, headers=guesser), 60)
    # The owner, elsewhere, is not locked out.
    response = await clients[1].post("/auth/token", data=right, headers=owner)
    assert response.status_code == 200, response.text


async def test_logins_per_address_are_limited_whatever_the_names(
    clients: list[httpx.AsyncClient],
) -> None:
    address = _from()
    for attempt in range(PER_IP):
        form = {"username": f"nobody{uuid.uuid4().hex[:8]}", "password": "whatever-1234"}
        response = await clients[attempt % 2].post("/auth/token", data=form, headers=address)
        assert response.status_code == 401, response.text
    form = {"username": f"nobody{uuid.uuid4().hex[:8]}", "password": "whatever-1234"}
    _assert_limited(await clients[0].post("/auth/token", data=form, headers=address), 60)


async def test_registrations_per_address_are_limited(clients: list[httpx.AsyncClient]) -> None:
    address = _from()
    for attempt in range(REGISTER):
        response = await clients[attempt % 2].post("/auth/register", json=_user(), headers=address)
        assert response.status_code == 201, response.text
    _assert_limited(await clients[1].post("/auth/register", json=_user(), headers=address), 3600)
    other = await clients[1].post("/auth/register", json=_user(), headers=_from())
    assert other.status_code == 201, other.text


async def test_refreshes_per_address_are_limited(clients: list[httpx.AsyncClient]) -> None:
    address = _from()
    for attempt in range(REFRESH):
        response = await clients[attempt % 2].post(
            "/auth/refresh", json={"refresh_token": "not-a-token"}, headers=address
        )
        assert response.status_code == 401, response.text
    _assert_limited(
        await clients[0].post(
            "/auth/refresh", json={"refresh_token": "not-a-token"}, headers=address
        ),
        60,
    )


async def test_rate_limits_off_lets_one_address_log_in_freely(api: ApiClient) -> None:
    """GENVID_RATE_LIMITS=off (the other api tests' setting): no 429, however many."""
    for _ in range(PER_IP * 2):
        form = {"username": f"nobody{uuid.uuid4().hex[:8]}", "password": "whatever-1234"}
        assert (await api.http.post("/auth/token", data=form)).status_code == 401
