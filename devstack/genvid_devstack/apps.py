"""GenVid itself on the local stack: the namespace's resources, the operator and the api.

The operator and the api run as local processes (the way `make dev` shows their logs), and
the worker runs in pods that the process kubelet starts, exactly as Jobs run on a cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genvid_devstack.process import Process, StartupError, http_ok, spawn, wait_until
from genvid_devstack.state import REPO_ROOT, State

WORKER = "genvid-worker"
# Settings a developer may export to use the real Veo instead of the synthetic generator.
VEO_CREDENTIALS = ("GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION")


def namespace_objects(namespace: str, worker_env: Mapping[str, str]) -> list[dict[str, Any]]:
    """The namespace, the worker's own ServiceAccount and its ConfigMap and Secret.

    Veo credentials go to the Secret, everything else to the ConfigMap; the operator's Jobs
    load both through envFrom.
    """
    labels = {"app.kubernetes.io/part-of": "genvid"}
    config = {k: v for k, v in worker_env.items() if k not in VEO_CREDENTIALS}
    credentials = {k: v for k, v in worker_env.items() if k in VEO_CREDENTIALS}
    meta = {"name": WORKER, "namespace": namespace, "labels": labels}
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": labels},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta,
            "automountServiceAccountToken": False,
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": config},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": credentials},
    ]


def worker_env(storage_emulator_host: str, bucket: str) -> dict[str, str]:
    env = {"GENVID_BUCKET": bucket, "STORAGE_EMULATOR_HOST": storage_emulator_host}
    credentials = {k: os.environ[k] for k in VEO_CREDENTIALS if os.environ.get(k)}
    env.update(credentials)
    env["GENVID_PROVIDER"] = "veo" if credentials else "synthetic"
    if "GENVID_SYNTHETIC_BILLING" in os.environ:
        env["GENVID_SYNTHETIC_BILLING"] = os.environ["GENVID_SYNTHETIC_BILLING"]
    return env


def kubectl_apply(kubectl: Path, kubeconfig: Path, objects: list[dict[str, Any]]) -> None:
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    result = subprocess.run(
        [kubectl, "apply", "--server-side", "--force-conflicts", "-f", "-"],
        input=document,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StartupError(f"kubectl apply: {result.stderr.strip()}")


def jwt_secret(state: State) -> str:
    """One signing key per state folder, so tokens survive a restart of the stack."""
    path = state.root / "jwt-secret"
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as secret:
            secret.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def start_operator(state: State, env: Mapping[str, str], namespace: str) -> Process:
    metrics_port = state.port("operator-metrics")
    liveness = f"http://127.0.0.1:{state.port('operator-liveness')}/healthz"
    process = spawn(
        "operator",
        [sys.executable, "-m", "genvid_operator", f"--liveness={liveness}"],
        log_dir=state.logs,
        env={
            **os.environ,
            **env,
            "GENVID_NAMESPACE": namespace,
            "GENVID_METRICS_PORT": str(metrics_port),
        },
    )
    wait_until(lambda: http_ok(liveness), timeout=60, process=process)
    return process


def migrate(env: Mapping[str, str]) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(REPO_ROOT / "api" / "alembic.ini"),
            "upgrade",
            "head",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StartupError(f"database migrations failed:\n{result.stdout}{result.stderr}")


def start_api(state: State, env: Mapping[str, str], namespace: str, port: int) -> Process:
    process = spawn(
        "api",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "genvid_api.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout-graceful-shutdown",
            "10",
        ],
        log_dir=state.logs,
        env={
            **os.environ,
            **env,
            "GENVID_NAMESPACE": namespace,
            "GENVID_JWT_SECRET": jwt_secret(state),
            "GENVID_METRICS_PORT": str(state.port("api-metrics")),
            # Webhook receivers of local development listen on http://127.0.0.1.
            "GENVID_WEBHOOK_ALLOW_INSECURE": "true",
            "GENVID_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        },
    )
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=60, process=process)
    return process
