"""Rotating the JWT key logs nobody out: tokens name their key (`kid`), and the previous key is
accepted until its grace period ends; a retired or unknown key is not."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from support.api import ApiClient, in_process_api, make_settings

pytestmark = pytest.mark.stack

OLD_KEY, NEW_KEY = "old-key-" + "o" * 40, "new-key-" + "n" * 40

ApiWith = Callable[..., AbstractAsyncContextManager[ApiClient]]


@pytest.fixture
def api_with(stack_env: dict[str, str], api_migrated: str, api_namespace: str) -> ApiWith:
    def start(**overrides: str) -> AbstractAsyncContextManager[ApiClient]:
        return in_process_api(make_settings(stack_env, api_migrated, api_namespace, **overrides))

    return start


async def test_tokens_of_the_previous_key_work_during_the_grace_period_only(
    api_with: ApiWith,
) -> None:
    async with api_with(GENVID_JWT_SECRET=OLD_KEY, GENVID_JWT_KEY_ID="2025") as before:
        account = await before.register()
    assert jwt.get_unverified_header(account.access_token)["kid"] == "2025"

    rotated = {"GENVID_JWT_SECRET": NEW_KEY, "GENVID_JWT_KEY_ID": "2026"}
    grace = {"GENVID_JWT_PREVIOUS_SECRET": OLD_KEY, "GENVID_JWT_PREVIOUS_KEY_ID": "2025"}
    later = (datetime.now(UTC) + timedelta(days=14)).isoformat()
    async with api_with(**rotated, **grace, GENVID_JWT_PREVIOUS_KEY_UNTIL=later) as after:
        assert (await after.http.get("/me", headers=account.auth)).status_code == 200
        # The refresh token of the old key gets a pair signed with the new one.
        pair = await after.http.post("/auth/refresh", json={"refresh_token": account.refresh_token})
        assert pair.status_code == 200, pair.text
        assert jwt.get_unverified_header(pair.json()["access_token"])["kid"] == "2026"
        # A token naming the new key but signed with the old one proves nothing.
        claims = jwt.decode(account.access_token, OLD_KEY, algorithms=["HS256"])
        forged = jwt.encode(claims, OLD_KEY, algorithm="HS256", headers={"kid": "2026"})
        forged_auth = {"Authorization": f"Bearer {forged}"}
        assert (await after.http.get("/me", headers=forged_auth)).status_code == 401

    ended = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    async with api_with(**rotated, **grace, GENVID_JWT_PREVIOUS_KEY_UNTIL=ended) as retired:
        assert (await retired.http.get("/me", headers=account.auth)).status_code == 401
    async with api_with(**rotated) as without:
        assert (await without.http.get("/me", headers=account.auth)).status_code == 401


async def test_a_token_without_kid_is_checked_against_the_current_key(
    api_with: ApiWith,
) -> None:
    """Tokens issued before keys had ids."""
    async with api_with(GENVID_JWT_SECRET=NEW_KEY) as api:
        account = await api.register()
        claims = jwt.decode(account.access_token, NEW_KEY, algorithms=["HS256"])
        plain = jwt.encode(claims, NEW_KEY, algorithm="HS256")
        assert "kid" not in jwt.get_unverified_header(plain)
        assert (await api.http.get("/me", headers={"Authorization": f"Bearer {plain}"})).is_success
        unknown = jwt.encode(claims, NEW_KEY, algorithm="HS256", headers={"kid": "nope"})
        response = await api.http.get("/me", headers={"Authorization": f"Bearer {unknown}"})
        assert response.status_code == 401
