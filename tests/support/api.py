"""The api under test: its settings on the stack, the app in-process, and a client of it.

The api runs in-process (httpx.ASGITransport, lifespan included) where HTTP semantics suffice;
`api_process` starts it as a real uvicorn process where process behaviour matters.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from genvid_api.config import Settings
from genvid_api.main import create_app

JWT_SECRET = "test-secret-" + "x" * 60


def api_env(
    stack_env: dict[str, str], database_url: str, namespace: str, **overrides: str
) -> dict[str, str]:
    """The api's environment on the test stack: fast loops, small heartbeats, no request rate
    limits (every test user registers from one address), room for many streams per user
    (tests of the limits set their own), and no webhook loops: their durable consumer is the
    webhook tests' own (they turn the loops on, with a consumer of their own)."""
    env = {
        "GENVID_DATABASE_URL": database_url,
        "GENVID_NATS_URL": stack_env["NATS_URL"],
        "GENVID_STORAGE_EMULATOR_HOST": stack_env["STORAGE_EMULATOR_HOST"],
        "GENVID_BUCKET": stack_env["GENVID_BUCKET"],
        "GENVID_KUBECONFIG": stack_env["KUBECONFIG"],
        "GENVID_NAMESPACE": namespace,
        "GENVID_JWT_SECRET": JWT_SECRET,
        "GENVID_SIGNING_MODE": "local",
        "GENVID_OUTBOX_INTERVAL_SECONDS": "0.2",
        "GENVID_OUTBOX_GRACE_SECONDS": "1",
        "GENVID_SSE_HEARTBEAT_SECONDS": "0.5",
        "GENVID_RATE_LIMITS": "off",
        "GENVID_SSE_STREAMS_PER_USER": "100",
        "GENVID_WEBHOOKS_ENABLED": "false",
    }
    env.update(overrides)
    return env


def make_settings(
    stack_env: dict[str, str], database_url: str, namespace: str, **overrides: str
) -> Settings:
    env = api_env(stack_env, database_url, namespace, **overrides)
    values = {key.removeprefix("GENVID_").lower(): value for key, value in env.items()}
    return Settings.model_validate(values)


@contextlib.asynccontextmanager
async def in_process_api(settings: Settings) -> AsyncIterator[ApiClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield ApiClient(http=http, app=app)


@dataclass
class Account:
    user_id: str
    username: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class ApiClient:
    http: httpx.AsyncClient
    app: Any = None

    async def register(self, prefix: str = "user") -> Account:
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        password = f"Correct-Horse-{uuid.uuid4().hex[:8]}"
        email = f"{name}@example.com"
        response = await self.http.post(
            "/auth/register", json={"email": email, "username": name, "password": password}
        )
        assert response.status_code == 201, response.text
        tokens = await self.http.post("/auth/token", data={"username": name, "password": password})
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        return Account(
            user_id=response.json()["id"],
            username=name,
            email=email,
            password=password,
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
        )

    async def generate(self, account: Account, **body: Any) -> httpx.Response:
        headers = dict(account.auth)
        if key := body.pop("idempotency_key", None):
            headers["Idempotency-Key"] = key
        return await self.http.post(
            "/generate", json={"prompt": "a red fox in snow", **body}, headers=headers
        )


def api_http_client(url: str) -> httpx.AsyncClient:
    """An HTTP client of an api process (no proxy from the environment in between)."""
    return httpx.AsyncClient(base_url=url, timeout=30, trust_env=False)


def access_claims(user_id: str, lifetime: int) -> dict[str, Any]:
    """The claims of an access token the api would issue now, valid for `lifetime` seconds,
    for tests to forge variants of."""
    now = int(time.time())
    return {
        "iss": "genvid-api",
        "sub": user_id,
        "type": "access",
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + lifetime,
    }
