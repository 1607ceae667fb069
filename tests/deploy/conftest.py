"""Fixtures of the deployment tests: kubectl bound to the test's namespace."""

from __future__ import annotations

import subprocess

import pytest

from support.kube import Kubectl, kubectl


@pytest.fixture(name="kubectl")
def namespaced_kubectl(stack_env: dict[str, str], namespace: str) -> Kubectl:
    """kubectl in the test's namespace; `check=True` raises with kubectl's stderr."""

    def run(
        *args: str, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return kubectl(stack_env["KUBECONFIG"], "-n", namespace, *args, input=input, check=check)

    return run
