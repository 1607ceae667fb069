"""Pure parts of the api, without the stack: settings, the resource builder, validation."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from genvid_api.config import Settings, SigningMode, asyncpg_url
from genvid_api.main import create_app
from genvid_api.models import Generation as VideoGenerationJob
from genvid_api.models import GenerationCreate, UserCreate
from genvid_api.resources import build_video_generation
from genvid_api.signing import LocalSigner, SignedUrl, UrlCache

SECRET = "s" * 64


def settings(**values: object) -> Settings:
    return Settings.model_validate(
        {"database_url": "postgresql://u:p@db:5432/genvid", "jwt_secret": SECRET, **values}
    )


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/genvid")
    monkeypatch.setenv("GENVID_JWT_SECRET", SECRET)
    monkeypatch.setenv("GENVID_MODELS", "veo-a, veo-b")
    monkeypatch.setenv("GENVID_DEFAULT_MODEL", "veo-b")
    monkeypatch.setenv("GENVID_SIGNING_MODE", "iam")
    monkeypatch.setenv("KUBECONFIG", "/tmp/kubeconfig")
    loaded = Settings()  # type: ignore[call-arg]
    assert loaded.async_database_url == "postgresql+asyncpg://u:p@db/genvid"
    assert loaded.models == ("veo-a", "veo-b")
    assert loaded.default_model == "veo-b"
    assert loaded.signing_mode is SigningMode.IAM
    assert loaded.kubeconfig == "/tmp/kubeconfig"
    assert (loaded.namespace, loaded.access_token_ttl_seconds) == ("genvid", 900)
    assert loaded.signed_url_ttl_seconds == 900


@pytest.mark.parametrize(
    "values",
    [
        {"jwt_secret": "too-short"},
        {"models": "Not A Model"},
        {"default_model": "veo-not-listed"},
        {"database_url": "mysql://db/genvid"},
    ],
)
def test_bad_settings_fail_at_startup(values: dict[str, object]) -> None:
    with pytest.raises((ValidationError, ValueError)):
        settings(**values).async_database_url  # noqa: B018


def test_asyncpg_url_keeps_everything_but_the_scheme() -> None:
    assert asyncpg_url("postgresql://a:b@h:1/d?x=1") == "postgresql+asyncpg://a:b@h:1/d?x=1"


def test_resource_for_a_job_is_the_contract_with_the_operator() -> None:
    owner, job_id = uuid.uuid4(), uuid.uuid4()
    job = VideoGenerationJob(
        id=job_id,
        user_id=owner,
        prompt="a fox",
        model="veo-3.0-fast-generate-001",
        duration_seconds=4,
        aspect_ratio="16:9",
        created_at=datetime.now(UTC),
    )
    assert build_video_generation(job) == {
        "apiVersion": "genvid.io/v1alpha1",
        "kind": "VideoGeneration",
        "metadata": {
            "name": str(job_id),
            "labels": {"app.kubernetes.io/part-of": "genvid", "genvid.io/owner": str(owner)},
        },
        "spec": {
            "prompt": "a fox",
            "model": "veo-3.0-fast-generate-001",
            "durationSeconds": 4,
            "aspectRatio": "16:9",
            "owner": str(owner),
            "cancel": False,
        },
    }
    job.seed, job.negative_prompt, job.idempotency_key = 0, "blur", "k1"
    spec = build_video_generation(job)["spec"]
    assert (spec["seed"], spec["negativePrompt"], spec["idempotencyKey"]) == (0, "blur", "k1")


def test_prompt_rules_match_the_crd() -> None:
    assert GenerationCreate(prompt="line one\nline two\ttabbed").prompt.startswith("line")
    for bad in ("", " ", "x" * 2001, "\x1b[31mred", "del\x7f"):
        with pytest.raises(ValidationError):
            GenerationCreate(prompt=bad)
    assert len(GenerationCreate(prompt="é" * 2000).prompt) == 2000


def test_openapi_documents_the_http_contract() -> None:
    schema = create_app(settings()).openapi()
    paths = schema["paths"]
    assert set(paths) >= {
        "/auth/register", "/auth/token", "/auth/refresh", "/me", "/generate", "/generations",
        "/generations/{generation_id}", "/generations/{generation_id}/cancel",
        "/generations/{generation_id}/events", "/events",
    }  # fmt: skip
    assert set(paths["/generate"]["post"]["responses"]) >= {"202", "422"}
    assert "409" in paths["/generations/{generation_id}/cancel"]["post"]["responses"]
    assert "text/event-stream" in paths["/events"]["get"]["responses"]["200"]["content"]
    header = [p for p in paths["/generate"]["post"]["parameters"] if p["in"] == "header"]
    assert header[0]["name"] == "Idempotency-Key"
    security = schema["components"]["securitySchemes"]
    assert security["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/auth/token"


@pytest.mark.parametrize(
    ("email", "username", "password", "weak"),
    [
        # Short local parts and usernames are not words to look for: "a" is in most passwords.
        ("a@x.io", "bob", "a-very-strong-passphrase", False),
        ("abc@example.com", "xyz", "fabcde-91-horse", False),
        ("jo@example.com", "ann", "jolly-banner-77", False),
        # From four characters on, they are.
        ("anna@example.com", "zed", "my-anna-horse-9", True),
        ("x@example.com", "Bobby", "my-bobby-horse-9", True),
        ("bobby.tables@example.com", "abc", "Bobby.Tables-42!", True),
    ],
)
def test_password_must_not_contain_the_username_or_email_of_four_characters_or_more(
    email: str, username: str, password: str, weak: bool
) -> None:
    user = UserCreate(email=email, username=username, password=password)
    reason = user.weak_password_reason()
    if weak:
        assert reason == "password must not contain the username or email"
    else:
        assert reason is None


async def test_local_signing_runs_in_a_worker_thread() -> None:
    """RSA signing is CPU work: a page of URLs must not block every other request (and SSE
    stream) of the process, so it runs off the event loop, one thread hop per batch."""
    signer = LocalSigner("http://127.0.0.1:4443", timedelta(minutes=15))
    credentials: Any = signer._credentials
    original = credentials.sign_bytes
    threads: list[int] = []

    def recording(message: bytes) -> bytes:
        threads.append(threading.get_ident())
        return bytes(original(message))

    credentials.sign_bytes = recording
    loop_thread = threading.get_ident()
    urls = await signer.sign_many([("b", f"previews/{n}.mp4") for n in range(6)])
    assert [url.url.split("?")[0] for url in urls] == [
        f"http://127.0.0.1:4443/b/previews/{n}.mp4" for n in range(6)
    ]
    assert len(threads) == 6 and loop_thread not in threads
    assert len(set(threads)) == 1  # the whole batch in one thread
    one = await signer.sign("b", "poster.jpg")
    assert "X-Goog-Signature=" in one.url
    assert len(threads) == 7 and threads[-1] != loop_thread
    assert await signer.sign_many([]) == []


async def test_url_cache_signs_each_object_once_per_half_lifetime() -> None:
    ttl = timedelta(minutes=10)
    calls: list[list[tuple[str, str]]] = []

    async def sign(objects: list[tuple[str, str]]) -> list[SignedUrl]:
        calls.append(objects)
        expires = datetime.now(UTC) + ttl
        return [SignedUrl(f"https://x/{b}/{o}?n={len(calls)}", expires) for b, o in objects]

    cache = UrlCache(ttl, max_entries=3)
    first = await cache.through([("b", "v1"), ("b", "p1")], sign)
    again = await cache.through([("b", "p1"), ("b", "v1"), ("b", "v2")], sign)
    assert calls == [[("b", "v1"), ("b", "p1")], [("b", "v2")]]
    assert [again[1], again[0]] == first

    await cache.through([("b", "v9")], sign)  # a fourth entry evicts the least recent: p1
    await cache.through([("b", "v1"), ("b", "p1")], sign)
    assert calls[-1] == [("b", "p1")]


async def test_url_cache_re_signs_urls_past_half_their_lifetime() -> None:
    ttl = timedelta(minutes=10)
    count = 0

    async def sign(objects: list[tuple[str, str]]) -> list[SignedUrl]:
        nonlocal count
        count += len(objects)
        expires = datetime.now(UTC) + ttl / 2 - timedelta(seconds=1)
        return [SignedUrl("u", expires) for _ in objects]

    cache = UrlCache(ttl)
    await cache.through([("b", "o")], sign)
    await cache.through([("b", "o")], sign)
    assert count == 2
