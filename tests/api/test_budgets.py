"""Budgets reserved atomically by POST /generate, the rate limit, /me/usage and the admin
override, against the real stack's Postgres and apiserver (no operator: rows stay QUEUED).

Each test gets a database of its own, so the global budget is the test's alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from genvid_api import budgets
from genvid_devstack import apps
from genvid_devstack.state import State
from support.api import ApiClient, api_env, api_http_client, in_process_api, make_settings
from support.api_process import start_api_process
from support.database import fetch, ledger, scratch_database
from support.kube import kubectl_json

pytestmark = pytest.mark.stack

FAST = "veo-3.0-fast-generate-001"  # $0.15 a second: 4 s reserve $0.60
ESTIMATE = 600_000


@pytest.fixture
async def database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    async with scratch_database(stack_env, "genvid_budget") as url:
        await asyncio.to_thread(apps.migrate, {"DATABASE_URL": url})
        yield url


def owned_resources(stack_env: dict[str, str], namespace: str, user_id: str) -> list[str]:
    listing = kubectl_json(
        stack_env["KUBECONFIG"], "-n", namespace, "get", "vg", "-l", f"genvid.io/owner={user_id}"
    )
    return [item["metadata"]["name"] for item in listing["items"]]


ApiWith = Callable[..., contextlib.AbstractAsyncContextManager[ApiClient]]


@pytest.fixture
def api_with(stack_env: dict[str, str], database: str, namespace: str) -> ApiWith:
    """The api in-process on the test's database and namespace: `api_with(GENVID_...=value)`."""

    def start(**overrides: str) -> contextlib.AbstractAsyncContextManager[ApiClient]:
        return in_process_api(make_settings(stack_env, database, namespace, **overrides))

    return start


@dataclass
class Clock:
    """The budgets' clock in an app, moved by the test (periods roll over without sleeping)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def set_clock(api: ApiClient, now: datetime) -> Clock:
    clock = Clock(now)
    api.app.dependency_overrides[budgets.now] = clock
    return clock


def body(**options: Any) -> dict[str, Any]:
    return {"prompt": f"a tide pool {uuid.uuid4().hex[:6]}", "model": FAST, **options}


async def assert_exactly_five_of_thirty(
    responses: list[httpx.Response],
    database: str,
    stack_env: dict[str, str],
    namespace: str,
    user_id: str,
) -> None:
    codes = sorted(response.status_code for response in responses)
    assert codes == [202] * 5 + [402] * 25, codes
    for refused in (r for r in responses if r.status_code == 402):
        detail = refused.json()["detail"]
        assert (detail["code"], detail["scope"], detail["limit_usd"]) == (
            "budget_exceeded", "user", "3.00",
        )  # fmt: skip
        assert detail["reserved_usd"] == "3.00" and detail["spent_usd"] == "0.00"
        assert detail["requested_usd"] == "0.60"
    accepted = {r.json()["id"] for r in responses if r.status_code == 202}
    rows = await fetch(
        database,
        "SELECT id, reserved_micros, budget_period_start FROM video_generation_jobs "
        "WHERE user_id = $1",
        uuid.UUID(user_id),
    )
    assert {str(row["id"]) for row in rows} == accepted
    assert all(row["reserved_micros"] == ESTIMATE for row in rows)
    assert all(row["budget_period_start"] is not None for row in rows)
    assert await ledger(database, user_id) == (5 * ESTIMATE, 0)
    assert await ledger(database, "global") == (5 * ESTIMATE, 0)
    assert sorted(owned_resources(stack_env, namespace, user_id)) == sorted(accepted)


async def test_thirty_concurrent_requests_fit_exactly_five_in_the_budget(
    api_with: ApiWith, stack_env: dict[str, str], database: str, namespace: str
) -> None:
    async with api_with(GENVID_USER_DAILY_BUDGET_USD="3", GENVID_GENERATE_PER_MINUTE="100") as api:
        account = await api.register()
        responses = await asyncio.gather(
            *(api.http.post("/generate", json=body(), headers=account.auth) for _ in range(30))
        )
    await assert_exactly_five_of_thirty(
        list(responses), database, stack_env, namespace, account.user_id
    )


async def test_the_same_race_across_two_api_processes(
    stack_env: dict[str, str], database: str, namespace: str, tmp_path: Path
) -> None:
    env = api_env(
        stack_env, database, namespace,
        GENVID_USER_DAILY_BUDGET_USD="3", GENVID_GENERATE_PER_MINUTE="100",
        GENVID_OUTBOX_ENABLED="false",
    )  # fmt: skip
    first = await asyncio.to_thread(start_api_process, env, tmp_path / "api-a.log")
    try:
        second = await asyncio.to_thread(start_api_process, env, tmp_path / "api-b.log")
        try:
            async with api_http_client(first.url) as a, api_http_client(second.url) as b:
                account = await ApiClient(http=a).register()
                responses = await asyncio.gather(
                    *(
                        (a if n % 2 else b).post("/generate", json=body(), headers=account.auth)
                        for n in range(30)
                    )
                )
        finally:
            second.stop()
    finally:
        first.stop()
    await assert_exactly_five_of_thirty(
        list(responses), database, stack_env, namespace, account.user_id
    )


async def test_the_global_budget_holds_across_users(api_with: ApiWith, database: str) -> None:
    async with api_with(GENVID_GLOBAL_DAILY_BUDGET_USD="3") as api:
        accounts = [await api.register() for _ in range(3)]
        responses = await asyncio.gather(
            *(
                api.http.post("/generate", json=body(), headers=accounts[n % 3].auth)
                for n in range(15)
            )
        )
    codes = sorted(response.status_code for response in responses)
    assert codes == [202] * 5 + [402] * 10
    refused = next(r for r in responses if r.status_code == 402).json()["detail"]
    assert (refused["scope"], refused["limit_usd"]) == ("global", "3.00")
    assert await ledger(database, "global") == (5 * ESTIMATE, 0)
    users = [await ledger(database, account.user_id) for account in accounts]
    assert sum(reserved for reserved, _ in users) == 5 * ESTIMATE


async def test_an_idempotent_replay_reserves_nothing_twice(
    api_with: ApiWith, database: str
) -> None:
    async with api_with(GENVID_USER_DAILY_BUDGET_USD="1") as api:
        account = await api.register()
        headers = {**account.auth, "Idempotency-Key": "one-fox"}
        request = body()
        replies = await asyncio.gather(
            *(api.http.post("/generate", json=request, headers=headers) for _ in range(4))
        )
        assert [reply.status_code for reply in replies] == [202] * 4
        assert len({reply.json()["id"] for reply in replies}) == 1
        assert await ledger(database, account.user_id) == (ESTIMATE, 0)
        # $1 holds one $0.60 estimate, not two: the replays took nothing.
        refused = await api.http.post("/generate", json=body(), headers=account.auth)
        assert refused.status_code == 402


async def test_a_refused_request_leaves_nothing_behind_and_says_when_it_resets(
    api_with: ApiWith, stack_env: dict[str, str], database: str, namespace: str
) -> None:
    async with api_with(GENVID_USER_DAILY_BUDGET_USD="1") as api:
        account = await api.register()
        set_clock(api, datetime(2026, 12, 10, 23, 59, 30, tzinfo=UTC))
        big = await api.http.post(
            "/generate", json=body(model="veo-3.0-generate-001", duration_seconds=8),
            headers=account.auth,
        )  # fmt: skip
        assert big.status_code == 402, big.text
        detail = big.json()["detail"]
        assert detail["requested_usd"] == "3.20"
        assert detail["resets_at"] == "2026-12-11T00:00:00+00:00"
        assert detail["period"] == "daily" and detail["period_start"] == "2026-12-10"
        rows = await fetch(
            database, "SELECT 1 FROM video_generation_jobs WHERE user_id = $1",
            uuid.UUID(account.user_id),
        )  # fmt: skip
        assert rows == []
        assert owned_resources(stack_env, namespace, account.user_id) == []


async def test_the_next_day_restores_the_budget(api_with: ApiWith) -> None:
    async with api_with(GENVID_USER_DAILY_BUDGET_USD="0.6") as api:
        account = await api.register()
        clock = set_clock(api, datetime(2026, 12, 10, 23, 59, 59, tzinfo=UTC))
        assert (await api.http.post("/generate", json=body(), headers=account.auth)).is_success
        again = await api.http.post("/generate", json=body(), headers=account.auth)
        assert again.status_code == 402
        clock.now = datetime(2026, 12, 11, 0, 0, 1, tzinfo=UTC)
        usage = (await api.http.get("/me/usage", headers=account.auth)).json()
        assert (usage["period_start"], usage["reserved_usd"]) == ("2026-12-11", "0.00")
        assert usage["remaining_usd"] == "0.60"
        assert (await api.http.post("/generate", json=body(), headers=account.auth)).is_success
        usage = (await api.http.get("/me/usage", headers=account.auth)).json()
        assert (usage["reserved_usd"], usage["remaining_usd"]) == ("0.60", "0.00")


async def test_monthly_budgets_reset_on_the_first_of_the_month(api_with: ApiWith) -> None:
    async with api_with(GENVID_BUDGET_PERIOD="monthly", GENVID_USER_DAILY_BUDGET_USD="0.6") as api:
        account = await api.register()
        clock = set_clock(api, datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
        assert (await api.http.post("/generate", json=body(), headers=account.auth)).is_success
        clock.now = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
        refused = await api.http.post("/generate", json=body(), headers=account.auth)
        assert refused.status_code == 402
        assert refused.json()["detail"]["resets_at"] == "2027-01-01T00:00:00+00:00"
        clock.now = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
        assert (await api.http.post("/generate", json=body(), headers=account.auth)).is_success


async def test_rate_limit_answers_429_with_retry_after(api_with: ApiWith, database: str) -> None:
    async with api_with(GENVID_GENERATE_PER_MINUTE="3", GENVID_RATE_LIMITS="on") as api:
        account, other = await api.register(), await api.register()
        clock = set_clock(api, datetime(2026, 12, 10, 10, 0, 15, tzinfo=UTC))
        replies = await asyncio.gather(
            *(api.http.post("/generate", json=body(), headers=account.auth) for _ in range(5))
        )
        assert sorted(r.status_code for r in replies) == [202, 202, 202, 429, 429]
        limited = next(r for r in replies if r.status_code == 429)
        assert limited.headers["Retry-After"] == "45"
        assert "3 generation requests a minute" in limited.json()["detail"]
        # Per user: someone else is not limited by it.
        assert (await api.http.post("/generate", json=body(), headers=other.auth)).is_success
        clock.now = datetime(2026, 12, 10, 10, 1, 0, tzinfo=UTC)
        assert (await api.http.post("/generate", json=body(), headers=account.auth)).is_success
    assert len(await fetch(database, "SELECT 1 FROM video_generation_jobs")) == 5


async def test_me_usage_reports_budget_and_queue(api_with: ApiWith, database: str) -> None:
    async with api_with(GENVID_USER_DAILY_BUDGET_USD="5") as api:
        account = await api.register()
        fresh = (await api.http.get("/me/usage", headers=account.auth)).json()
        assert fresh["limit_usd"] == "5.00" and fresh["remaining_usd"] == "5.00"
        assert (fresh["active"], fresh["waiting"], fresh["period"]) == (0, 0, "daily")
        ids = [
            (await api.http.post("/generate", json=body(), headers=account.auth)).json()["id"]
            for _ in range(3)
        ]
        first = (await api.http.get(f"/generations/{ids[0]}", headers=account.auth)).json()
        assert first["cost_usd"] == "0.60"
        # As the operator would: one admitted and finished at $0.45, one admitted and running.
        connection = await asyncpg.connect(database)
        try:
            await connection.execute(
                "UPDATE video_generation_jobs SET admitted_at = now() WHERE id = ANY($1::uuid[])",
                [uuid.UUID(i) for i in ids[:2]],
            )
            await connection.execute(
                "UPDATE video_generation_jobs SET status = 'SUCCEEDED' WHERE id = $1",
                uuid.UUID(ids[0]),
            )
            assert await connection.fetchval(
                "SELECT genvid_settle_generation($1, 450000)", uuid.UUID(ids[0])
            )
            assert not await connection.fetchval(
                "SELECT genvid_settle_generation($1, 450000)", uuid.UUID(ids[0])
            )
        finally:
            await connection.close()
        usage = (await api.http.get("/me/usage", headers=account.auth)).json()
    assert (usage["spent_usd"], usage["reserved_usd"]) == ("0.45", "1.20")
    assert usage["remaining_usd"] == "3.35"
    assert (usage["active"], usage["waiting"]) == (1, 1)
    assert datetime.fromisoformat(usage["resets_at"]) > datetime.now(UTC)


async def test_admin_override_changes_a_users_budget(api_with: ApiWith, database: str) -> None:
    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "genvid_api.admin", "budget", *args],
            env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    async with api_with() as api:
        account = await api.register()
        done = await asyncio.to_thread(admin, "set", account.email, "1.2")
        assert done.returncode == 0, done.stderr
        assert "1.20 USD" in done.stdout
        shown = await asyncio.to_thread(admin, "show", account.username)
        assert "1.20 USD" in shown.stdout
        usage = (await api.http.get("/me/usage", headers=account.auth)).json()
        assert usage["limit_usd"] == "1.20"
        codes = [
            (await api.http.post("/generate", json=body(), headers=account.auth)).status_code
            for _ in range(3)
        ]
        assert codes == [202, 202, 402]
        assert (await asyncio.to_thread(admin, "clear", account.user_id)).returncode == 0
        usage = (await api.http.get("/me/usage", headers=account.auth)).json()
        assert usage["limit_usd"] == "20.00"
        unknown = await asyncio.to_thread(admin, "set", "nobody@example.com", "5")
        assert unknown.returncode == 1 and "no user" in unknown.stderr


async def test_budget_settings_reach_the_api_from_the_callers_environment(
    stack_env: dict[str, str],
    database: str,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As `GENVID_USER_DAILY_BUDGET_USD=3 make up` does: the stack starts the api with
    `apps.start_api`, whose process inherits the caller's environment."""
    monkeypatch.setenv("GENVID_USER_DAILY_BUDGET_USD", "3")
    state = State(tmp_path)
    state.prepare()
    env = {**stack_env, "DATABASE_URL": database}
    port = state.port("api")
    api = await asyncio.to_thread(apps.start_api, state, env, namespace, port)
    try:
        async with api_http_client(f"http://127.0.0.1:{port}") as http:
            account = await ApiClient(http=http).register()
            usage = (await http.get("/me/usage", headers=account.auth)).json()
    finally:
        api.stop()
    assert usage["limit_usd"] == "3.00"
