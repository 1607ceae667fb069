"""kubectl as the tests run it: the venv's binary, one kubeconfig, stderr in every failure."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

KUBECTL = Path(sys.executable).parent / "kubectl"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
"""kubectl bound to one namespace (the `kubectl` fixture of the deployment tests)."""


def kubectl(
    kubeconfig: str, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run kubectl; with `check`, a non-zero exit fails the test with kubectl's stderr."""
    result = subprocess.run(
        [str(KUBECTL), *args],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result


def kubectl_watch(kubeconfig: str, *args: str) -> subprocess.Popen[str]:
    """A kubectl that keeps running (`get --watch`), its output read line by line from stdout;
    the caller terminates it."""
    return subprocess.Popen(
        [str(KUBECTL), *args],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        stdout=subprocess.PIPE,
        text=True,
    )


def kubectl_json(kubeconfig: str, *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(kubectl(kubeconfig, *args, "-o", "json").stdout)
    return document


@contextlib.contextmanager
def scratch_namespace(kubeconfig: str, prefix: str) -> Iterator[str]:
    """A new namespace, deleted afterwards without waiting for its contents to go."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    kubectl(kubeconfig, "create", "namespace", name)
    try:
        yield name
    finally:
        kubectl(kubeconfig, "delete", "namespace", name, "--wait=false", check=False)


ApiRequest = tuple[str, str, str, str]
"""(verb, resource, subresource, scope) of `apiserver_request_total`."""


def apiserver_requests(kubeconfig: str) -> Counter[ApiRequest]:
    """The apiserver's own count of the requests it served since it started (every client's),
    from its /metrics, summed over response codes and API versions."""
    exposition = kubectl(kubeconfig, "get", "--raw", "/metrics").stdout
    counts: Counter[ApiRequest] = Counter()
    for family in text_string_to_metric_families(exposition):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            if sample.name == "apiserver_request_total":
                labels = sample.labels
                key = (labels["verb"], labels["resource"], labels["subresource"], labels["scope"])
                counts[key] += int(sample.value)
    return counts
