"""Pure parts of the api, without the stack: settings, the resource builder, validation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from genvid_api.config import Settings, SigningMode, asyncpg_url
from genvid_api.kube import build_video_generation
from genvid_api.main import create_app
from genvid_api.models import GenerationCreate, VideoGenerationJob

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
