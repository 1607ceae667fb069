"""The Go-built binaries (control plane, helm, Prometheus), made by `hack/build-binaries.sh`.

The script is the one place that knows the pinned versions and how to build them; this module
asks it to build what is missing, then reads the paths it prints.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from genvid_devstack.state import REPO_ROOT

BUILD_SCRIPT = REPO_ROOT / "hack" / "build-binaries.sh"


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    kube_controller_manager: Path
    etcd: Path
    helm: Path
    kubectl: Path
    prometheus: Path
    promtool: Path


def ensure_binaries() -> Binaries:
    """Build missing binaries (minutes, once per version) and return their paths."""
    if shutil.which("go") is None:
        sys.exit(
            "genvid: the local control plane is built from source and needs Go >= 1.26 "
            "(https://go.dev/doc/install), or point KUBECONFIG at an existing cluster."
        )
    subprocess.run(["bash", str(BUILD_SCRIPT)], check=True)
    printed = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-env"], check=True, capture_output=True, text=True
    ).stdout
    paths = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    kubectl = Path(sys.executable).parent / "kubectl"
    return Binaries(
        kube_apiserver=Path(paths["KUBE_APISERVER"]),
        kube_controller_manager=Path(paths["KUBE_CONTROLLER_MANAGER"]),
        etcd=Path(paths["ETCD"]),
        helm=Path(paths["HELM"]),
        kubectl=kubectl,
        prometheus=Path(paths["PROMETHEUS"]),
        promtool=Path(paths["PROMTOOL"]),
    )
