"""Operator settings, read once at start-up from the environment (pydantic-settings).

Every setting has a `GENVID_`-prefixed variable; the connection settings also accept the plain
names the local stack and most platforms use (`DATABASE_URL`, `NATS_URL`), as the api's do.
Prices come from `genvid_contracts.pricing` (the api reserves with the same table), and
`GENVID_PRICES_USD_PER_SECOND` overrides them in both. The table in operator/README.md lists
them all.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from genvid_contracts.nats_settings import NatsSettings, env_alias
from genvid_contracts.pricing import DEFAULT_PRICES_USD_PER_SECOND


class Settings(NatsSettings, BaseSettings):
    # Its own configuration: BaseSettings' defaults, a later base, would override the mixin's.
    model_config = SettingsConfigDict(env_prefix="GENVID_", extra="ignore", frozen=True)

    # The NATS connection: NatsSettings.
    namespace: str = "genvid"
    database_url: str | None = Field(
        default=None,
        validation_alias=env_alias("DATABASE_URL"),
        description="Postgres to mirror transitions into; without it only NATS hears of them.",
    )

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
    ttl_seconds_after_finished: int = Field(
        default=3600,
        ge=0,
        description="A finished Job is kept this long once its terminal status is synced.",
    )
    unsynced_job_ttl_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="The Job's TTL until then: a safety net, its result is in the bucket.",
    )
    # Finished VideoGenerations: Postgres keeps them; etcd need not.
    finished_retention_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="A finished VideoGeneration is deleted this long after it finished, once "
        "its final status is in Postgres and published; the api serves it from Postgres.",
    )
    worker_cpu: str = "1"
    worker_memory: str = "512Mi"

    # The bucket, read-only: the worker's result beside its preview, for a Job already gone.
    bucket: str | None = None
    storage_emulator_host: str | None = Field(
        default=None, validation_alias=env_alias("STORAGE_EMULATOR_HOST")
    )
    storage_project: str | None = None

    # Cost guardrails.
    prices_usd_per_second: dict[str, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES_USD_PER_SECOND)
    )
    max_cost_per_generation_usd: Decimal = Decimal("4")

    # Admission: how many generations run at once (Veo's usual quota is ~10 per project).
    global_max_active: int = Field(default=10, ge=1)
    user_max_active: int = Field(default=2, ge=1)
    admission_interval_seconds: float = Field(
        default=2.0, gt=0, description="Admission pass on a timer, besides every finish."
    )

    # Operations.
    resync_seconds: float = Field(default=30, gt=0)
    metrics_port: int = 8080
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Allocations between the garbage collector's young collections (Python's "
        "default is 700); 0 keeps the interpreter's thresholds.",
    )

    # Dispatch concurrency.
    worker_limit: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Objects with a kopf worker at once, per watched resource; unset: no limit. A "
            "worker lingers 0.5 s after its object's last event and counts meanwhile, so a "
            "limit of N handles at most 2N objects a second (a burst, a restart)."
        ),
    )
    kube_connections: int = Field(
        default=40,
        ge=1,
        description="Requests of the operator's own in flight to the apiserver at most.",
    )
