"""Fixtures and helpers for the api's tests (loaded with `pytest_plugins = ["api_helpers"]`).

Everything runs against the session's real stack (`stack_env`): migrations once per session,
one Kubernetes namespace for the api's resources, unique users per test. The api runs
in-process (httpx.ASGITransport, lifespan included) where HTTP semantics suffice, and as real
uvicorn processes where process behaviour matters (streaming, shutdown, two replicas).

PYTEST_DONT_REWRITE: test modules import this before pytest loads it as a plugin; its asserts
carry their own messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import nats
import pytest
from nats.js import JetStreamContext

from genvid_api.config import Settings
from genvid_api.main import create_app
from genvid_api.nats_stream import ensure_stream
from genvid_api.security import create_access_token
from genvid_contracts.events import STREAM_NAME, job_subject
from genvid_devstack import apps

REPO = Path(__file__).resolve().parents[1]
KUBECTL = Path(sys.executable).parent / "kubectl"
JWT_SECRET = "test-secret-" + "x" * 60


# ---------------------------------------------------------------------------------------------
# Polling


T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, seconds: float = 15.0, what: str = "condition"
) -> T:
    """Poll until `probe` returns something other than None/False; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Settings and the in-process app


def api_env(
    stack_env: dict[str, str], database_url: str, namespace: str, **overrides: str
) -> dict[str, str]:
    """The api's environment on the test stack: fast loops, small heartbeats."""
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


# ---------------------------------------------------------------------------------------------
# Fixtures


@contextlib.asynccontextmanager
async def scratch_database(stack_env: dict[str, str], prefix: str) -> AsyncIterator[str]:
    """A new, empty database on the stack's server (its URL), dropped afterwards."""
    base = stack_env["DATABASE_URL"]
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urllib.parse.urlsplit(base)
    try:
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(base)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


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


def kubectl(stack_env: dict[str, str], *args: str, check: bool = True) -> str:
    result = subprocess.run(
        [str(KUBECTL), *args],
        env={**os.environ, "KUBECONFIG": stack_env["KUBECONFIG"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result.stdout


@pytest.fixture(scope="session")
def api_namespace(stack_env: dict[str, str]) -> Iterator[str]:
    """The namespace the api creates VideoGenerations in (no operator watches it)."""
    name = f"genvid-api-{uuid.uuid4().hex[:8]}"
    kubectl(stack_env, "create", "namespace", name)
    yield name
    kubectl(stack_env, "delete", "namespace", name, "--wait=false", check=False)


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


# ---------------------------------------------------------------------------------------------
# The operator's side, simulated


TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "REJECTED")


async def publish_transition(
    js: JetStreamContext, user_id: str, job_id: str, status: str, seq: int, **extra: Any
) -> int:
    """Publish as the operator does; returns the stream sequence."""
    body = {
        "id": job_id,
        "user_id": user_id,
        "status": status,
        "seq": seq,
        "reason": extra.pop("reason", None),
        "message": extra.pop("message", None),
        "attempts": extra.pop("attempts", 1 if status != "QUEUED" else 0),
        "updated_at": "2026-11-24T10:00:00+00:00",
        "object_name": extra.pop("object_name", None),
        "poster_object": extra.pop("poster_object", None),
        "bucket": extra.pop("bucket", None),
        "cost_usd": extra.pop("cost_usd", None),
    }
    ack = await js.publish(
        job_subject(user_id, job_id),
        json.dumps(body).encode(),
        stream=STREAM_NAME,
        headers={"Nats-Msg-Id": f"{job_id}:{seq}"},
    )
    return int(ack.seq)


CONSUMER_LIST_PAGE = 256  # the server's page size for $JS.API.CONSUMER.LIST


async def consumer_count(js: JetStreamContext, user_id: str) -> int:
    """Consumers on GENVID_JOBS reading one user's subjects (their job and user streams).

    Counting only the test's own (new) user keeps other tests' consumers, still being deleted
    or expiring on a loaded machine, out of the count.
    """
    prefix = job_subject(user_id, "")
    count, offset = 0, 0
    while True:
        page = await js.consumers_info(STREAM_NAME, offset=offset)
        for info in page:
            config = info.config
            subjects = [config.filter_subject or "", *(config.filter_subjects or [])]
            if any(subject.startswith(prefix) for subject in subjects):
                count += 1
        if len(page) < CONSUMER_LIST_PAGE:
            return count
        offset += len(page)


# ---------------------------------------------------------------------------------------------
# Server-sent events


@dataclass
class SseEvent:
    id: str | None
    data: dict[str, Any]


@dataclass
class SseReader:
    """Reads one SSE response line by line; comments (heartbeats) are counted, not returned."""

    response: httpx.Response
    comments: int = 0
    ended: bool = False
    _lines: AsyncIterator[str] | None = None
    _pending: dict[str, str] = field(default_factory=dict)
    _events: list[SseEvent] = field(default_factory=list)

    async def _read_line(self) -> bool:
        """Consume one line; False at the end of the stream."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        try:
            line = await anext(self._lines)
        except (StopAsyncIteration, httpx.RemoteProtocolError, httpx.ReadError):
            self.ended = True
            return False
        if line.startswith(":"):
            self.comments += 1
        elif line == "":
            if "data" in self._pending:
                data = json.loads(self._pending["data"])
                self._events.append(SseEvent(self._pending.get("id"), data))
            self._pending = {}
        else:
            name, _, value = line.partition(":")
            self._pending[name] = value.removeprefix(" ")
        return True

    async def next_event(self, seconds: float = 10.0) -> SseEvent | None:
        """The next event; None when the stream ends first."""
        async with asyncio.timeout(seconds):
            while not self._events:
                if not await self._read_line():
                    return None
            return self._events.pop(0)

    async def events(self, count: int, seconds: float = 10.0) -> list[SseEvent]:
        found: list[SseEvent] = []
        while len(found) < count:
            event = await self.next_event(seconds)
            if event is None:
                break
            found.append(event)
        return found

    async def wait_comments(self, count: int, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while self.comments < count:
                if not await self._read_line():
                    raise AssertionError("stream ended while waiting for heartbeats")

    async def wait_end(self, seconds: float = 10.0) -> None:
        """Read until the server ends the stream (events seen meanwhile are kept)."""
        async with asyncio.timeout(seconds):
            while await self._read_line():
                pass


@contextlib.asynccontextmanager
async def sse(
    http: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> AsyncIterator[SseReader]:
    async with http.stream(
        "GET", url, headers={**headers, "Accept": "text/event-stream"}, timeout=30
    ) as response:
        yield SseReader(response)


# ---------------------------------------------------------------------------------------------
# The api as real processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_api_process(env: dict[str, str], log: Path) -> ApiProcess:
    port = free_port()
    handle = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "genvid_api.main:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "10",
        ],
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    handle.close()
    server = ApiProcess(url=f"http://127.0.0.1:{port}", process=process, log=log)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"api process exited:\n{server.log_tail()}")
        try:
            healthz = httpx.get(f"{server.url}/healthz", timeout=1, trust_env=False)
            if healthz.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"api process did not start:\n{server.log_tail()}")
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Social: generations made SUCCEEDED as the operator would, published videos


@dataclass
class Social:
    """Publishing on top of an ApiClient: SUCCEEDED generations are written into the database
    as the operator writes them (status, bucket, object names), then published via the api."""

    api: ApiClient
    db: asyncpg.Pool
    bucket: str

    async def succeeded_generation(self, account: Account, prompt: str | None = None) -> str:
        """A job row as POST /generate leaves it, finished as the operator finishes it (no
        custom resource: `resource_created` is true, so no outbox touches it)."""
        job_id = uuid.uuid4()
        await self.db.execute(
            "INSERT INTO video_generation_jobs (id, user_id, prompt, model, duration_seconds, "
            "aspect_ratio, status, resource_created, event_seq, bucket, object_name, "
            "poster_object, size_bytes, cost_usd, started_at, finished_at) VALUES "
            "($1, $2, $3, 'veo-3.0-fast-generate-001', 4, '16:9', 'SUCCEEDED', true, 4, $4, $5, "
            "$6, 1024, 0.4, now(), now())",
            job_id, uuid.UUID(account.user_id), prompt or f"a lighthouse {job_id.hex[:6]}",
            self.bucket, f"previews/{job_id}/preview.mp4", f"previews/{job_id}/poster.jpg",
        )  # fmt: skip
        return str(job_id)

    async def publish(
        self, account: Account, title: str | None = None, description: str = ""
    ) -> dict[str, Any]:
        """A new SUCCEEDED generation of `account`, published; the video as the api returns it."""
        generation_id = await self.succeeded_generation(account)
        response = await self.api.http.post(
            "/videos",
            json={
                "generation_id": generation_id,
                "title": title or f"video {generation_id[:8]}",
                "description": description,
            },
            headers=account.auth,
        )
        assert response.status_code == 201, response.text
        video: dict[str, Any] = response.json()
        return video

    async def pages(
        self, account: Account, path: str, limit: int = 20, **params: str
    ) -> list[dict[str, Any]]:
        """Every item of a paginated listing, following next_cursor to the end."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query: dict[str, str | int] = {"limit": limit, **params}
            if cursor:
                query["cursor"] = cursor
            response = await self.api.http.get(path, params=query, headers=account.auth)
            assert response.status_code == 200, response.text
            body = response.json()
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    async def account(self, prefix: str = "fan") -> Account:
        """A user written straight into the database with an access token minted for it: many
        users fast (registering hashes a password with argon2 each time)."""
        user_id = uuid.uuid4()
        name = f"{prefix}{user_id.hex[:10]}"
        await self.db.execute(
            "INSERT INTO users (id, email, username, hashed_password) VALUES ($1, $2, $3, 'x')",
            user_id, f"{name}@example.com", name,
        )  # fmt: skip
        token = create_access_token(self.api.app.state.settings, user_id).token
        return Account(
            user_id=str(user_id),
            username=name,
            email=f"{name}@example.com",
            password="",
            access_token=token,
            refresh_token="",
        )
