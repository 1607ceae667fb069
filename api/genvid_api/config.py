"""Settings of the api, read from the environment (pydantic-settings) once per process: by
`create_app` for the server, by the migrations' environment for their `DatabaseSettings`.

Every setting has a `GENVID_`-prefixed variable; the connection settings also accept the plain
names the local stack and most platforms use (`DATABASE_URL`, `NATS_URL`, `KUBECONFIG`,
`STORAGE_EMULATOR_HOST`). The table in api/README.md lists them all.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from genvid_contracts.nats_settings import NatsSettings, env_alias
from genvid_contracts.pricing import DEFAULT_PRICES_USD_PER_SECOND
from genvid_contracts.resource import DEFAULT_MODEL

# The CRD's pattern for spec.model: a model the apiserver would refuse is a configuration error.
_MODEL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")


class BudgetPeriod(StrEnum):
    """How long a budget lasts: a UTC day, or a UTC calendar month."""

    DAILY = "daily"
    MONTHLY = "monthly"


class SigningMode(StrEnum):
    """How signed URLs are made: with a generated key (local stack) or through IAM (GKE)."""

    LOCAL = "local"
    IAM = "iam"


class DatabaseSettings(BaseSettings):
    """What the migrations need, and nothing they would have to be given for no use."""

    model_config = SettingsConfigDict(env_prefix="GENVID_", extra="ignore", frozen=True)

    database_url: str = Field(validation_alias=env_alias("DATABASE_URL"))

    @property
    def async_database_url(self) -> str:
        """The URL for SQLAlchemy's asyncpg dialect, whatever scheme was configured."""
        return asyncpg_url(self.database_url)


class Settings(DatabaseSettings, NatsSettings):
    # Connections (NATS: NatsSettings)
    kubeconfig: str | None = Field(
        default=None,
        validation_alias=env_alias("KUBECONFIG"),
        description="kubeconfig file; without it the in-cluster service account is used.",
    )
    namespace: str = "genvid"
    kube_request_timeout_seconds: float = Field(default=10.0, gt=0)
    # Past these a request answers 503: connecting to Postgres or one statement, and waiting
    # for a pooled connection.
    database_timeout_seconds: float = Field(default=3.0, gt=0)
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    ready_timeout_seconds: float = Field(
        default=2.0, gt=0, description="Each dependency check of /readyz."
    )

    # Authentication
    jwt_secret: SecretStr = Field(description="HS256 key shared by every api replica.")
    jwt_key_id: str = Field(
        default="1",
        min_length=1,
        max_length=64,
        description="`kid` of jwt_secret, written into every token's header.",
    )
    jwt_previous_secret: SecretStr | None = Field(
        default=None,
        description="The key before the last rotation: its tokens are still accepted (grace).",
    )
    jwt_previous_key_id: str | None = Field(default=None, min_length=1, max_length=64)
    jwt_previous_key_until: datetime | None = Field(
        default=None, description="End of the previous key's grace period; unset: until removed."
    )
    jwt_issuer: str = "genvid-api"
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=30, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=60)

    # Generations
    models: Annotated[tuple[str, ...], NoDecode] = (DEFAULT_MODEL, "veo-3.0-generate-001")
    default_model: str = DEFAULT_MODEL
    list_limit_default: int = Field(default=20, ge=1, le=100)
    min_deadline_seconds: int = Field(
        default=60, ge=1, description="The shortest deadline_seconds POST /generate accepts."
    )
    max_deadline_seconds: int = Field(
        default=24 * 3600, ge=1, description="The longest deadline_seconds POST /generate accepts."
    )

    # Budgets and admission (genvid_api.budgets, genvid_api.ratelimit)
    prices_usd_per_second: dict[str, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES_USD_PER_SECOND),
        description="Model -> USD per second, as the operator's (what a generation reserves).",
    )
    budgets_enabled: bool = True
    budget_period: BudgetPeriod = BudgetPeriod.DAILY
    user_daily_budget_usd: Decimal = Field(
        default=Decimal(20), ge=0, description="Each user's budget per period, unless overridden."
    )
    global_daily_budget_usd: Decimal = Field(
        default=Decimal(500), ge=0, description="Everyone's budget together, per period."
    )
    generate_per_minute: int = Field(
        default=30, ge=0, description="POST /generate per user and minute; 0 = no limit."
    )

    # Abuse limits: request rates on /auth (429 + Retry-After, counted in Postgres by
    # genvid_api.ratelimit), the body size, and the server-sent event streams.
    rate_limits: bool = Field(
        default=True,
        description="off: no request-rate limits (auth, POST /generate), for load tests from "
        "one address. Budgets, caps and the body limit stay.",
    )
    login_per_minute_per_ip: int = Field(default=30, ge=0)
    login_per_minute_per_account: int = Field(
        default=5,
        ge=0,
        description="Per account name and address: a guesser elsewhere never locks the owner out.",
    )
    login_per_hour_per_account: int = Field(default=20, ge=0)
    register_per_hour_per_ip: int = Field(default=30, ge=0)
    refresh_per_minute_per_ip: int = Field(default=60, ge=0)
    refresh_per_minute_per_user: int = Field(default=10, ge=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="413 beyond this.")
    sse_streams_per_user: int = Field(default=10, ge=1, description="Open streams per user.")
    sse_max_replay_events: int = Field(
        default=10_000,
        ge=1,
        description="How far back (stream sequences) Last-Event-ID may resume; 410 beyond.",
    )
    sse_recheck_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often each process renews its streams' slots and checks their accounts.",
    )
    sse_queue_events: int = Field(
        default=256,
        ge=1,
        description="Live events an open stream may have waiting; a slower client is ended.",
    )

    # Storage and signed URLs
    bucket: str = "genvid-previews"
    signing_mode: SigningMode = SigningMode.LOCAL
    signed_url_ttl_seconds: int = Field(default=15 * 60, ge=1, le=7 * 24 * 3600)
    storage_emulator_host: str | None = Field(
        default=None,
        validation_alias=env_alias("STORAGE_EMULATOR_HOST"),
        description="Where signed URLs point in local mode (the storage emulator).",
    )
    signing_service_account: str | None = Field(
        default=None,
        description="IAM mode: the service account that signs; default: the workload's own.",
    )

    # Outbox reconciler (creates custom resources for rows the request path did not finish)
    outbox_enabled: bool = True
    outbox_interval_seconds: float = Field(default=5.0, gt=0)
    outbox_grace_seconds: float = Field(default=10.0, ge=0)
    outbox_batch_size: int = Field(default=100, ge=1, le=1000)

    # Webhooks (genvid_api.webhooks, webhook_intake, webhook_delivery)
    webhooks_enabled: bool = Field(
        default=True,
        description="Run the webhook intake and delivery loops in this process (the routes "
        "are served either way).",
    )
    webhook_endpoints_per_user: int = Field(default=5, ge=1, le=100)
    webhook_allow_insecure: bool = Field(
        default=False, description="Accept http:// endpoint URLs (the local stack's receivers)."
    )
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="Deliver to loopback, private, link-local and metadata addresses.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="Per delivery attempt, from connecting to the answer.",
    )
    webhook_retry_delays_seconds: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(5, 30, 120, 600, 3600, 3 * 3600, 6 * 3600, 12 * 3600),
        description="Delay before each retry (with jitter); one attempt more than delays, then "
        "the delivery is failed.",
    )
    webhook_concurrency: int = Field(
        default=10, ge=1, le=200, description="Deliveries in flight per api process."
    )
    webhook_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle delivery loop looks for due messages."
    )
    webhook_consumer: str = Field(
        default="genvid-webhooks",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The durable JetStream consumer every api process of a deployment shares.",
    )
    webhook_retention_days: int = Field(
        default=7, ge=1, description="Delivered and failed messages are kept this long."
    )
    webhook_secret_grace_seconds: int = Field(
        default=86_400,
        ge=0,
        description="After a secret's rotation the previous one signs deliveries too for this "
        "long, so receivers can take the new one without refusing a delivery.",
    )

    # Server-sent events
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    nats_ensure_stream: bool = Field(
        default=True, description="Create the GENVID_JOBS stream at startup if it is missing."
    )

    # Operations
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Allocations between the garbage collector's young collections (Python's "
        "default is 700); 0 keeps the interpreter's thresholds.",
    )
    metrics_port: int = Field(
        default=0, ge=0, le=65535, description="Prometheus metrics on this port; 0: not served."
    )

    @field_validator("models", "webhook_retry_delays_seconds", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        """Comma-separated in the environment."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_retry_delays_seconds")
    @classmethod
    def _positive_delays(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay <= 0 for delay in value):
            raise ValueError("GENVID_WEBHOOK_RETRY_DELAYS_SECONDS must be positive")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < 32:
            raise ValueError("GENVID_JWT_SECRET must be at least 32 bytes")
        return value

    @field_validator("jwt_previous_secret")
    @classmethod
    def _long_previous_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("GENVID_JWT_PREVIOUS_SECRET must be at least 32 bytes")
        return value

    @model_validator(mode="after")
    def _check_previous_key(self) -> Self:
        if (self.jwt_previous_secret is None) != (self.jwt_previous_key_id is None):
            raise ValueError("GENVID_JWT_PREVIOUS_SECRET and _KEY_ID are set together")
        if self.jwt_previous_key_id == self.jwt_key_id:
            raise ValueError("GENVID_JWT_PREVIOUS_KEY_ID must differ from GENVID_JWT_KEY_ID")
        return self

    @model_validator(mode="after")
    def _check_models(self) -> Self:
        if not self.models:
            raise ValueError("GENVID_MODELS must name at least one model")
        for model in self.models:
            if not _MODEL_PATTERN.fullmatch(model):
                raise ValueError(f"model {model!r} does not match {_MODEL_PATTERN.pattern}")
        if self.default_model not in self.models:
            raise ValueError(f"GENVID_DEFAULT_MODEL {self.default_model!r} is not in GENVID_MODELS")
        return self

    @model_validator(mode="after")
    def _check_deadlines(self) -> Self:
        if self.min_deadline_seconds > self.max_deadline_seconds:
            raise ValueError("GENVID_MIN_DEADLINE_SECONDS is above GENVID_MAX_DEADLINE_SECONDS")
        return self


def asyncpg_url(url: str) -> str:
    """`postgresql://...` (libpq style, as platforms hand it out) to SQLAlchemy's asyncpg URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    raise ValueError("DATABASE_URL must be a postgresql:// URL")
