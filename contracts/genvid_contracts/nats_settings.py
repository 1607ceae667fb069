"""The NATS connection settings the api and the operator share (a pydantic-settings mixin):
the same variables, with `GENVID_` or without, and the same `NatsAuth` from them; `env_alias`
gives the components' own settings the same two names."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from genvid_contracts.events import NatsAuth


def env_alias(name: str) -> AliasChoices:
    """`GENVID_<name>`, or the plain `<name>` the local stack and most platforms set."""
    return AliasChoices(f"GENVID_{name}", name)


class NatsSettings(BaseSettings):
    # The components' own: a subclass merges the configurations of all its bases.
    model_config = SettingsConfigDict(env_prefix="GENVID_", extra="ignore", frozen=True)

    nats_url: str = Field(default="nats://127.0.0.1:4222", validation_alias=env_alias("NATS_URL"))
    nats_user: str | None = Field(default=None, validation_alias=env_alias("NATS_USER"))
    nats_password: SecretStr | None = Field(
        default=None, validation_alias=env_alias("NATS_PASSWORD")
    )
    nats_nkey_seed: SecretStr | None = Field(
        default=None,
        validation_alias=env_alias("NATS_NKEY_SEED"),
        description="An nkey's seed (SU...).",
    )
    nats_tls_ca_file: str | None = Field(
        default=None,
        validation_alias=env_alias("NATS_TLS_CA_FILE"),
        description="CA bundle to verify NATS' TLS certificate; TLS also for a tls:// URL.",
    )

    def nats_auth(self) -> NatsAuth:
        return NatsAuth(
            user=self.nats_user,
            password=self.nats_password.get_secret_value() if self.nats_password else None,
            nkey_seed=self.nats_nkey_seed.get_secret_value() if self.nats_nkey_seed else None,
            tls_ca_file=self.nats_tls_ca_file,
        )
