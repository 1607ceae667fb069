"""Shared fixtures: one real local stack per test session, one namespace per test.

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
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from genvid_devstack.stack import read_env_file

KUBECTL = Path(sys.executable).parent / "kubectl"
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


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def namespace(stack_env: dict[str, str]) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "KUBECONFIG": stack_env["KUBECONFIG"]}
    subprocess.run([KUBECTL, "create", "namespace", name], env=env, check=True, capture_output=True)
    yield name
    subprocess.run(
        [KUBECTL, "delete", "namespace", name, "--wait=false"], env=env, capture_output=True
    )


@pytest.fixture
def kubectl(stack_env: dict[str, str], namespace: str) -> Kubectl:
    """kubectl in the test's namespace; `check=True` raises with kubectl's stderr."""
    env = {**os.environ, "KUBECONFIG": stack_env["KUBECONFIG"]}

    def run(*args: str, input: str | None = None, check: bool = False) -> Any:
        result = subprocess.run(
            [KUBECTL, "-n", namespace, *args], env=env, input=input, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result

    return run
