"""Facts about local processes that tests check (a worker killed, a port to listen on)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP a process and its children (a server that hangs, unlike one that is gone: its
    connections stay open and never answer), SIGCONT them afterwards whatever happens."""
    stopped = [pid, *_children(pid)]
    for each in stopped:
        os.kill(each, signal.SIGSTOP)
    try:
        yield
    finally:
        for each in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGCONT)


def postmaster_pid(stack_state: Path) -> int:
    """The local stack's Postgres server (its data folder's postmaster.pid)."""
    return int((stack_state / "postgres" / "data" / "postmaster.pid").read_text().split()[0])


def apiserver_pid(stack_state: Path) -> int:
    """The local stack's kube-apiserver (the one whose certificates live in its state folder)."""
    cert_dir = f"--cert-dir={stack_state / 'apiserver'}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"kube-apiserver") and cert_dir in argv:
            return int(entry.name)
    raise LookupError(f"no kube-apiserver runs with {cert_dir.decode()}")
