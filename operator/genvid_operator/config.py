"""Operator settings, read once at start-up from the environment (pydantic-settings).

Every setting has a `GENVID_`-prefixed variable; the connection settings also accept the plain
names the local stack and most platforms use (`DATABASE_URL`, `NATS_URL`), as the api's do.
Prices live here, not in code: they change more often than the operator does. The table in
operator/README.md lists them all.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from genvid_contracts.resource import DEFAULT_MODEL

DEFAULT_PRICES_USD_PER_SECOND = {
    "veo-2.0-generate-001": Decimal("0.50"),
    "veo-3.0-generate-001": Decimal("0.40"),
    DEFAULT_MODEL: Decimal("0.15"),
    "veo-3.1-generate-preview": Decimal("0.40"),
    "veo-3.1-fast-generate-preview": Decimal("0.15"),
}


def _env(name: str) -> AliasChoices:
    return AliasChoices(f"GENVID_{name}", name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENVID_", extra="ignore", frozen=True)

    namespace: str = "genvid"
    database_url: str | None = Field(
        default=None,
        validation_alias=_env("DATABASE_URL"),
        description="Postgres to mirror transitions into; without it only NATS hears of them.",
    )
    nats_url: str = Field(default="nats://127.0.0.1:4222", validation_alias=_env("NATS_URL"))

    # The worker Job.
    worker_image: str = "genvid-worker:latest"
    worker_command: list[str] = ["python", "-m", "genvid_worker"]
    worker_service_account: str = "genvid-worker"
    worker_config_name: str = Field(
        default="genvid-worker",
        description="ConfigMap and Secret whose keys become the worker's environment.",
    )
    max_retries: int = Field(default=3, ge=0, le=10)
    active_deadline_seconds: int = Field(default=900, ge=30)
    ttl_seconds_after_finished: int = Field(default=3600, ge=0)
    worker_cpu: str = "1"
    worker_memory: str = "512Mi"

    # Cost guardrails.
    prices_usd_per_second: dict[str, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES_USD_PER_SECOND)
    )
    max_cost_per_generation_usd: Decimal = Decimal("4")

    # Operations.
    resync_seconds: float = Field(default=30, gt=0)
    metrics_port: int = 8080
