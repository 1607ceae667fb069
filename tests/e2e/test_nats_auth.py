"""NATS with credentials: the api and the operator connect through `genvid_contracts.events`
with the `NatsAuth` their settings give (GENVID_NATS_USER / _PASSWORD / _NKEY_SEED /
_TLS_CA_FILE), here against a real nats-server that requires a password."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from genvid_api.config import Settings as ApiSettings
from genvid_contracts import events
from genvid_devstack.process import spawn, tcp_open, wait_until
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
    monkeypatch.setenv("GENVID_NATS_USER", USER)
    monkeypatch.setenv("GENVID_NATS_PASSWORD", PASSWORD)
    monkeypatch.setenv("GENVID_JWT_SECRET", "x" * 32)
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused/unused")
    auth = settings().nats_auth()
    assert await connected_within(guarded_nats, auth, 10)
    assert not await connected_within(guarded_nats, events.NatsAuth(), 3)
    wrong = events.NatsAuth(user=USER, password="not-it")
    assert not await connected_within(guarded_nats, wrong, 3)


def test_a_tls_url_or_a_ca_file_turns_tls_on() -> None:
    assert "tls" not in events.NatsAuth().options("nats://nats:4222")
    assert "tls" in events.NatsAuth().options("tls://nats:4222")
    assert "nkeys_seed_str" in events.NatsAuth(nkey_seed="SUAEXAMPLE").options("nats://n:4222")
