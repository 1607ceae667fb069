"""NATS with credentials: the api and the operator connect through `genvid_contracts.events`
with the `NatsAuth` their settings give (GENVID_NATS_USER / _PASSWORD / _NKEY_SEED /
_TLS_CA_FILE), here against real nats-servers that require a password, or TLS with a
certificate of the local stack's CA."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nats.aio.client import Client as NATS

from genvid_api.config import Settings as ApiSettings
from genvid_contracts import events
from genvid_devstack.nats import start_nats
from genvid_devstack.pki import ensure_server_cert
from genvid_devstack.process import spawn, tcp_open, wait_until
from genvid_devstack.state import State
from genvid_operator.config import Settings as OperatorSettings
from support.processes import free_port

pytestmark = pytest.mark.stack

USER, PASSWORD = "genvid", "a-long-nats-password"


@pytest.fixture
def guarded_nats(tmp_path: Path) -> Iterator[str]:
    """A nats-server with JetStream that admits only USER/PASSWORD; its URL."""
    port = free_port()
    server = spawn(
        "nats",
        [Path(sys.executable).parent / "nats-server", "-js", "-a", "127.0.0.1", "-p", str(port),
         "-sd", tmp_path / "store", "--user", USER, "--pass", PASSWORD],
        log_dir=tmp_path,
    )  # fmt: skip
    try:
        wait_until(lambda: tcp_open("127.0.0.1", port), timeout=30, process=server)
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def tls_nats(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A nats-server that speaks only TLS, with a certificate of the stack's CA: its URL
    (tls://) and the CA file."""
    state = State(tmp_path / "state")
    state.prepare()
    server = start_nats(state.root, state.logs, tls=ensure_server_cert(state.root, "nats"))
    try:
        yield server.url, state.root / "pki" / "ca.crt"
    finally:
        server.process.stop()


def _nkey_text(prefix: bytes, raw: bytes) -> str:
    """An nkey's text: base32 of its prefix, the key and a CRC-16 (XMODEM, little-endian)."""
    crc = binascii.crc_hqx(prefix + raw, 0)
    return base64.b32encode(prefix + raw + crc.to_bytes(2, "little")).decode().rstrip("=")


def new_user_nkey() -> tuple[str, str]:
    """A user nkey as `nk -gen user` makes it: (seed "SU...", public key "U...")."""
    raw = os.urandom(32)
    public = Ed25519PrivateKey.from_private_bytes(raw).public_key()
    user = 20 << 3  # the prefix byte of a user's public key: "U"
    seed_prefix = bytes([(18 << 3) | (user >> 5), (user & 31) << 3])  # "S" then "U"
    public_raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _nkey_text(seed_prefix, raw), _nkey_text(bytes([user]), public_raw)


@pytest.fixture
def nkey_nats(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A nats-server that admits only one nkey user: its URL and that user's seed."""
    seed, public = new_user_nkey()
    state = State(tmp_path / "state")
    state.prepare()
    server = start_nats(state.root, state.logs, nkey_users=[public])
    try:
        yield server.url, seed
    finally:
        server.process.stop()


def component_settings(
    settings: type[OperatorSettings], monkeypatch: pytest.MonkeyPatch, **env: str
) -> OperatorSettings:
    """The api's or the operator's settings, from the environment their deployment gives."""
    monkeypatch.setenv("GENVID_JWT_SECRET", "x" * 32)
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused/unused")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings()


async def connected_within(url: str, auth: events.NatsAuth, seconds: float) -> bool:
    client = NATS()
    ensured: list[bool] = []

    async def on_connected() -> None:
        ensured.append(await events.ensure_stream(client.jetstream()) or True)

    task = asyncio.create_task(
        events.connect(client, url, name="test", on_connected=on_connected, auth=auth)
    )
    try:
        await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        return False
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await client.close()
    return client.is_closed and ensured == [True]


@pytest.mark.parametrize("settings", [ApiSettings, OperatorSettings])
async def test_api_and_operator_settings_authenticate_to_nats(
    guarded_nats: str, monkeypatch: pytest.MonkeyPatch, settings: type[OperatorSettings]
) -> None:
    given = {"GENVID_NATS_USER": USER, "GENVID_NATS_PASSWORD": PASSWORD}
    auth = component_settings(settings, monkeypatch, **given).nats_auth()
    assert await connected_within(guarded_nats, auth, 10)
    assert not await connected_within(guarded_nats, events.NatsAuth(), 3)
    wrong = events.NatsAuth(user=USER, password="not-it")
    assert not await connected_within(guarded_nats, wrong, 3)


@pytest.mark.parametrize("settings", [ApiSettings, OperatorSettings])
async def test_api_and_operator_verify_nats_tls_with_the_ca_file(
    tls_nats: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    settings: type[OperatorSettings],
) -> None:
    url, ca_file = tls_nats
    assert url.startswith("tls://")
    given = {"NATS_URL": url, "GENVID_NATS_TLS_CA_FILE": str(ca_file)}
    configured = component_settings(settings, monkeypatch, **given)
    assert await connected_within(configured.nats_url, configured.nats_auth(), 10)
    # Without the CA the system's roots do not know the certificate: refused, and the log
    # says why at each retry.
    with caplog.at_level(logging.WARNING, logger="test"):
        assert not await connected_within(url, events.NatsAuth(), 3)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    # Nor does the server let a client in without TLS.
    plain = url.replace("tls://", "nats://")
    assert not await connected_within(plain, events.NatsAuth(), 3)


@pytest.mark.parametrize("settings", [ApiSettings, OperatorSettings])
async def test_api_and_operator_authenticate_to_nats_with_an_nkey(
    nkey_nats: tuple[str, str], monkeypatch: pytest.MonkeyPatch, settings: type[OperatorSettings]
) -> None:
    url, seed = nkey_nats
    configured = component_settings(settings, monkeypatch, GENVID_NATS_NKEY_SEED=seed)
    assert await connected_within(url, configured.nats_auth(), 10)
    assert not await connected_within(url, events.NatsAuth(), 3)
    other_seed, _ = new_user_nkey()
    assert not await connected_within(url, events.NatsAuth(nkey_seed=other_seed), 3)


def test_a_tls_url_or_a_ca_file_turns_tls_on() -> None:
    assert "tls" not in events.NatsAuth().options("nats://nats:4222")
    assert "tls" in events.NatsAuth().options("tls://nats:4222")
    assert "nkeys_seed_str" in events.NatsAuth(nkey_seed="SUAEXAMPLE").options("nats://n:4222")
