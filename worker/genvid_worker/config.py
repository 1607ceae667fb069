"""Deployment configuration, read once from the environment.

What varies per generation (prompt, model, duration, price...) comes on the command line; what
varies per deployment (bucket, credentials, endpoints, polling) comes from the environment,
which the operator fills from a ConfigMap and a Secret. Every setting has a `GENVID_`-prefixed
variable; those of the storage client and the Vertex AI SDK also accept the libraries' own
names (as the api and the operator accept `DATABASE_URL`). The provider defaults to Veo only
where Vertex AI credentials are configured, so a laptop or CI without them renders synthetic
previews instead of failing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from genvid_contracts.worker import DEFAULT_MODEL

# Resumable uploads move in multiples of 256 KiB; the writer buffers at most one chunk.
UPLOAD_CHUNK_MULTIPLE = 256 * 1024


class Provider(StrEnum):
    VEO = "veo"
    SYNTHETIC = "synthetic"


def _also_read_as(name: str) -> Any:
    """An optional setting the client library reads as `name`: either variable sets it."""
    return Field(default=None, validation_alias=AliasChoices(f"GENVID_{name}", name))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENVID_", extra="ignore", frozen=True)

    bucket: str = Field(min_length=3, description="The private bucket previews are written to.")
    provider: Provider | None = Field(
        default=None, description="Overrides the choice made from the configured credentials."
    )
    synthetic_billing: bool = Field(
        default=True,
        description="Synthetic previews report the model's list price as their cost (as Veo "
        "would bill them), so budgets behave locally as in production; false reports 0.",
    )

    # Cloud Storage. The emulator host is the client library's own variable.
    storage_emulator_host: str | None = _also_read_as("STORAGE_EMULATOR_HOST")
    storage_project: str | None = Field(
        default=None, description="Project for the storage client; the emulator's by default."
    )
    upload_chunk_bytes: int = Field(default=8 * UPLOAD_CHUNK_MULTIPLE, gt=0)
    read_chunk_bytes: int = Field(default=4 * UPLOAD_CHUNK_MULTIPLE, gt=0)
    storage_retry_seconds: float = Field(
        default=60.0, gt=0, description="How long the client retries a transient storage error."
    )

    # Vertex AI, under the google-genai SDK's own variable names.
    google_cloud_project: str | None = _also_read_as("GOOGLE_CLOUD_PROJECT")
    google_cloud_location: str | None = _also_read_as("GOOGLE_CLOUD_LOCATION")
    google_api_key: str | None = _also_read_as("GOOGLE_API_KEY")

    veo_base_url: str | None = Field(
        default=None, description="Another endpoint for the Veo API (the fake server in tests)."
    )
    veo_model: str = DEFAULT_MODEL
    veo_request_timeout_seconds: float = Field(default=60.0, gt=0)

    poll_interval_seconds: float = Field(default=10.0, gt=0)
    poll_deadline_seconds: float = Field(
        default=600.0,
        gt=0,
        description="From the operation's start, across retried pods; keep it below the "
        "Job's activeDeadlineSeconds (900 s by default) so the worker reports the timeout.",
    )
    poll_max_consecutive_errors: int = Field(
        default=3, ge=0, description="Transient poll errors tolerated in a row before giving up."
    )

    @field_validator("upload_chunk_bytes")
    @classmethod
    def _whole_chunks(cls, value: int) -> int:
        if value % UPLOAD_CHUNK_MULTIPLE:
            raise ValueError(f"must be a multiple of {UPLOAD_CHUNK_MULTIPLE}")
        return value

    @field_validator(
        "storage_emulator_host",
        "google_cloud_project",
        "google_cloud_location",
        "google_api_key",
        "veo_base_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (a blank Secret key) means "not configured", not "configured as ''"."""
        return None if value == "" else value


def vertex_configured(settings: Settings) -> bool:
    """Whether the SDK can reach Vertex AI: an API key, or project and location (with ADC)."""
    has_project = bool(settings.google_cloud_project and settings.google_cloud_location)
    return bool(settings.google_api_key) or has_project


def choose_provider(settings: Settings, requested: Provider | None = None) -> Provider:
    """The command line wins, then GENVID_PROVIDER, then whatever the credentials allow."""
    if requested is not None:
        return requested
    if settings.provider is not None:
        return settings.provider
    return Provider.VEO if vertex_configured(settings) else Provider.SYNTHETIC


def storage_project(settings: Settings) -> str | None:
    if settings.storage_project:
        return settings.storage_project
    if settings.storage_emulator_host:
        return "genvid-local"
    return settings.google_cloud_project
