"""Session fixtures: one real local stack per test session, one namespace per test.

The stack is started exactly as `make up` starts it (`python -m genvid_devstack run`) in a
throwaway state folder, and tests take their settings from the `env` file it writes, so what
the tests prove holds for the file a developer sources.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from genvid_devstack.stack import read_env_file
from support.api import ApiClient, api_http_client
from support.kube import scratch_namespace

_START_TIMEOUT = 1800  # a cold machine builds the control-plane binaries first


@pytest.fixture(scope="session")
def stack_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("genvid-state")
    log = (state_dir / "supervisor.log").open("wb")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "genvid_devstack", "run", f"--state-dir={state_dir}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "DATABASE_URL")},
    )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not (state_dir / "ready").exists():
            if supervisor.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "the local stack did not start:\n"
                    + (state_dir / "supervisor.log").read_text()[-6000:]
                )
            time.sleep(0.2)
        yield state_dir
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=60)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait()
        log.close()


@pytest.fixture(scope="session")
def stack_env(stack_state: Path) -> dict[str, str]:
    return read_env_file(stack_state / "env")


@pytest.fixture
def namespace(stack_env: dict[str, str]) -> Iterator[str]:
    with scratch_namespace(stack_env["KUBECONFIG"], "test") as name:
        yield name


@pytest.fixture
async def stack_api(stack_env: dict[str, str]) -> AsyncIterator[ApiClient]:
    """The stack's own api, as `make dev` runs it."""
    async with api_http_client(stack_env["GENVID_API_URL"]) as http:
        yield ApiClient(http=http)
