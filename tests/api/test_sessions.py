"""Logging out one session, every session, and changing the password (which ends every
session): refresh tokens revoked, access tokens refused at once where the session ended."""

from __future__ import annotations

import pytest

from support.api import Account, ApiClient

pytestmark = pytest.mark.stack


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _second_session(api: ApiClient, account: Account) -> dict[str, str]:
    response = await api.http.post(
        "/auth/token", data={"username": account.username, "password": account.password}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


async def _refresh(api: ApiClient, token: str) -> int:
    return (await api.http.post("/auth/refresh", json={"refresh_token": token})).status_code


async def test_logout_revokes_this_refresh_token_only(api: ApiClient) -> None:
    account = await api.register()
    other = await _second_session(api, account)
    response = await api.http.post("/auth/logout", json={"refresh_token": account.refresh_token})
    assert response.status_code == 204
    again = await api.http.post("/auth/logout", json={"refresh_token": account.refresh_token})
    assert again.status_code == 204
    assert await _refresh(api, account.refresh_token) == 401
    # The other session goes on.
    assert await _refresh(api, other["refresh_token"]) == 200
    bad = await api.http.post("/auth/logout", json={"refresh_token": account.access_token})
    assert bad.status_code == 401


async def test_logout_all_ends_every_session_at_once(api: ApiClient) -> None:
    account = await api.register()
    other = await _second_session(api, account)
    assert (await api.http.get("/me", headers=_auth(other["access_token"]))).status_code == 200
    response = await api.http.post("/auth/logout-all", headers=account.auth)
    assert response.status_code == 204
    for token in (account.access_token, other["access_token"]):
        refused = await api.http.get("/me", headers=_auth(token))
        assert refused.status_code == 401
        assert refused.json() == {"detail": "Invalid or expired access token"}
    for token in (account.refresh_token, other["refresh_token"]):
        assert await _refresh(api, token) == 401
    fresh = await _second_session(api, account)
    assert (await api.http.get("/me", headers=_auth(fresh["access_token"]))).status_code == 200


async def test_password_change_ends_every_session_and_starts_a_new_one(api: ApiClient) -> None:
    account = await api.register()
    other = await _second_session(api, account)
    new_password = "Another-Horse-Battery-42"

    wrong = await api.http.post(
        "/auth/password",
        json={"current_password": "not-my-password", "new_password": new_password},
        headers=account.auth,
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "current_password"]
    weak = await api.http.post(
        "/auth/password",
        json={"current_password": account.password, "new_password": "passwordpassword"},
        headers=account.auth,
    )
    assert weak.status_code == 422
    assert weak.json()["detail"][0]["type"] == "weak_password"
    # Nothing ended yet.
    assert (await api.http.get("/me", headers=_auth(other["access_token"]))).is_success

    changed = await api.http.post(
        "/auth/password",
        json={"current_password": account.password, "new_password": new_password},
        headers=account.auth,
    )
    assert changed.status_code == 200, changed.text
    tokens = changed.json()
    assert (await api.http.get("/me", headers=_auth(tokens["access_token"]))).status_code == 200
    for token in (account.access_token, other["access_token"]):
        assert (await api.http.get("/me", headers=_auth(token))).status_code == 401
    for token in (account.refresh_token, other["refresh_token"]):
        assert await _refresh(api, token) == 401
    assert await _refresh(api, tokens["refresh_token"]) == 200

    old = {"username": account.username, "password": account.password}
    assert (await api.http.post("/auth/token", data=old)).status_code == 401
    new = {"username": account.username, "password": new_password}
    assert (await api.http.post("/auth/token", data=new)).status_code == 200
