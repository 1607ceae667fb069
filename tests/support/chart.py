"""The Helm chart under test: the pinned helm, and the chart rendered by it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from support import REPO
from support.monitoring import built_binary

CHART = REPO / "charts" / "genvid"
MANIFESTS = REPO / "manifests"
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


def find(docs: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def env_of(container: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
