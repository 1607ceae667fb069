"""The Helm chart as the tests render it: the pinned helm, `helm template` of charts/genvid."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from support import REPO
from support.monitoring import built_binary

CHART = REPO / "charts" / "genvid"
RELEASE = "genvid"

Manifest = dict[str, Any]


def helm_binary() -> Path:
    """The pinned helm, from the build script that knows the versions (`make binaries`)."""
    return built_binary("HELM")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, cwd=REPO, check=False
    )


def template(*args: str, namespace: str = "genvid") -> subprocess.CompletedProcess[str]:
    return helm("template", RELEASE, str(CHART), "--namespace", namespace, *args)


def render(*args: str, namespace: str = "genvid") -> list[Manifest]:
    result = template(*args, namespace=namespace)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
