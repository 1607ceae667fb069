"""Registration, login, token refresh and rotation, and what the api does with bad tokens."""

from __future__ import annotations

import uuid

import jwt
import pytest

from support.api import JWT_SECRET, ApiClient, access_claims

pytestmark = pytest.mark.stack


def _user(prefix: str = "u") -> dict[str, str]:
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    return {"email": f"{name}@Example.com", "username": name, "password": "Tr0ub4dor&3-horse"}


async def test_register_returns_the_user_without_its_password(api: ApiClient) -> None:
    body = _user()
    response = await api.http.post("/auth/register", json=body)
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == {"id", "email", "username", "created_at"}
    assert user["email"] == body["email"].lower()
    assert user["username"] == body["username"]


async def test_duplicate_username_is_409_and_a_registered_email_is_not_revealed(
    api: ApiClient,
) -> None:
    body = _user()
    assert (await api.http.post("/auth/register", json=body)).status_code == 201
    # The same email (any case) answers as a new one would, and creates nothing.
    same_email = {**_user(), "email": body["email"].upper()}
    response = await api.http.post("/auth/register", json=same_email)
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id", "email", "username", "created_at"}
    assert response.json()["email"] == same_email["email"].lower()
    login = {"username": same_email["username"], "password": same_email["password"]}
    assert (await api.http.post("/auth/token", data=login)).status_code == 401
    owner = {"username": body["email"], "password": body["password"]}
    assert (await api.http.post("/auth/token", data=owner)).status_code == 200
    same_name = {**_user(), "username": body["username"].upper()}
    response = await api.http.post("/auth/register", json=same_name)
    assert response.status_code == 409
    assert response.json() == {"detail": "username is taken"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a b@example.com"}, "email"),
        ({"username": "ab"}, "username"),
        ({"username": "has space"}, "username"),
        ({"password": "short"}, "password"),
        ({"password": "passwordpassword"}, "password"),
        ({"password": "aaaaaaaaaaaa"}, "password"),
        ({"unexpected": "field"}, "unexpected"),
    ],
)
async def test_invalid_registration_is_422_naming_the_field(
    api: ApiClient, change: dict[str, str], field: str
) -> None:
    response = await api.http.post("/auth/register", json={**_user(), **change})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(error["loc"][-1] == field for error in detail), detail


async def test_password_containing_the_username_is_weak(api: ApiClient) -> None:
    body = _user()
    body["password"] = f"{body['username']}-123!"
    response = await api.http.post("/auth/register", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "weak_password"


async def test_login_by_username_or_email_and_me(api: ApiClient) -> None:
    body = _user()
    created = (await api.http.post("/auth/register", json=body)).json()
    for login in (body["username"], body["email"], body["email"].upper()):
        response = await api.http.post(
            "/auth/token", data={"username": login, "password": body["password"]}
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        assert tokens["token_type"] == "bearer"
        me = await api.http.get(
            "/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 200
        assert me.json()["id"] == created["id"]


async def test_access_token_claims_are_short_lived_and_typed(api: ApiClient) -> None:
    account = await api.register()
    claims = jwt.decode(account.access_token, JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == account.user_id
    assert claims["type"] == "access"
    assert 0 < claims["exp"] - claims["iat"] <= 15 * 60
    header = jwt.get_unverified_header(account.access_token)
    assert header["alg"] == "HS256"


async def test_bad_credentials_are_401(api: ApiClient) -> None:
    account = await api.register()
    for username, password in (
        (account.username, "wrong-password-1"),
        (f"nobody{uuid.uuid4().hex[:6]}", account.password),
    ):
        response = await api.http.post(
            "/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 401
        assert response.json() == {"detail": "Incorrect username or password"}
        assert response.headers["www-authenticate"] == "Bearer"


async def test_refresh_rotates_and_reuse_revokes_the_family(api: ApiClient) -> None:
    account = await api.register()
    first = await api.http.post("/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != account.refresh_token
    me = await api.http.get("/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert me.status_code == 200

    # The old refresh token is spent: presenting it again is refused ...
    reuse = await api.http.post("/auth/refresh", json={"refresh_token": account.refresh_token})
    assert reuse.status_code == 401
    assert reuse.headers["www-authenticate"].startswith("Bearer")
    # ... and, as a replay of a leaked token, revokes the newer one too.
    after = await api.http.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401


async def test_an_access_token_is_not_a_refresh_token_and_vice_versa(api: ApiClient) -> None:
    account = await api.register()
    response = await api.http.post("/auth/refresh", json={"refresh_token": account.access_token})
    assert response.status_code == 401
    response = await api.http.get(
        "/me", headers={"Authorization": f"Bearer {account.refresh_token}"}
    )
    assert response.status_code == 401


def _forge(claims: dict[str, object], key: str, algorithm: str) -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


async def test_missing_expired_forged_and_alg_none_tokens_are_401(api: ApiClient) -> None:
    account = await api.register()
    valid = access_claims(account.user_id, lifetime=60)
    now = valid["iat"]
    unsigned = jwt.encode(valid, None, algorithm="none")  # type: ignore[arg-type]
    cases = {
        "expired": _forge({**valid, "iat": now - 120, "exp": now - 60}, JWT_SECRET, "HS256"),
        "other key": _forge(valid, "another-secret-" + "y" * 60, "HS256"),
        "alg none": unsigned,
        "HS512": _forge(valid, JWT_SECRET, "HS512"),
        "garbage": "not.a.jwt",
        "unknown user": _forge({**valid, "sub": str(uuid.uuid4())}, JWT_SECRET, "HS256"),
    }
    for name, token in cases.items():
        response = await api.http.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"', name
        assert response.json() == {"detail": "Invalid or expired access token"}, name
    # The same claims signed properly are accepted: the cases above failed for their flaw.
    good = _forge(valid, JWT_SECRET, "HS256")
    assert (
        await api.http.get("/me", headers={"Authorization": f"Bearer {good}"})
    ).status_code == 200

    missing = await api.http.get("/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {"detail": "Not authenticated"}
