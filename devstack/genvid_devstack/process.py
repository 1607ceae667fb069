"""Child processes of the local stack.

Every server runs in its own process group with a parent-death signal, so a stack that is
stopped, interrupted or killed leaves nothing behind: `stop()` ends the whole group, and if the
supervisor itself dies the kernel sends SIGTERM to each child.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class StartupError(RuntimeError):
    """A component did not come up; the message carries the tail of its log."""


@dataclass(frozen=True)
class RunAs:
    """An unprivileged identity for servers that refuse to run as root (PostgreSQL)."""

    uid: int
    gid: int


def _child_setup(run_as: RunAs | None) -> Callable[[], None]:
    def setup() -> None:
        if run_as is not None:
            os.setgroups([])
            os.setgid(run_as.gid)
            os.setuid(run_as.uid)
        # After the identity change: the kernel clears the parent-death signal on setuid/setgid.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is still there after `timeout`."""
        if self.popen.poll() is not None:
            _kill_group(self.popen.pid, signal.SIGKILL)
            return
        _kill_group(self.popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        _kill_group(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


@contextlib.contextmanager
def stop_on_failure(process: Process) -> Iterator[Process]:
    """Stops `process` if the block fails (readiness wait, first set-up), so a server whose
    start failed is never left running, even when interrupted."""
    try:
        yield process
    except BaseException:
        process.stop()
        raise


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def spawn(
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
) -> Process:
    """Start `argv` in a new session with stdout and stderr appended to `log_dir/name.log`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [os.fspath(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_child_setup(run_as),
        )
    return Process(name=name, popen=popen, log_path=log_path)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# Loopback servers are never reached through the caller's http_proxy.
local_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether a plain GET of `url` answers 2xx: the server is serving, not just listening."""
    try:
        with local_http.open(url, timeout=timeout) as response:
            status: int = response.status
            return 200 <= status < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    process: Process | None = None,
    interval: float = 0.1,
    what: str | None = None,
) -> None:
    """Poll `check` until it holds; fail fast, with the log, if `process` exits meanwhile.

    Errors name `what`, by default the process (the server that is coming up).
    """
    what = what or (process.name if process else "check")
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if process is not None and not process.alive():
            raise StartupError(
                f"{what}: {process.name} exited with {process.popen.returncode}\n"
                f"--- {process.log_path} ---\n{process.log_tail()}"
            )
        if time.monotonic() > deadline:
            tail = f"\n--- {process.log_path} ---\n{process.log_tail()}" if process else ""
            raise StartupError(f"{what}: not ready after {timeout:.0f}s{tail}")
        time.sleep(interval)


def wait_http_ready(process: Process, url: str, *, timeout: float, interval: float = 0.1) -> None:
    """Wait until a GET of `url` answers 2xx; a server that never does is stopped, not left."""
    with stop_on_failure(process):
        wait_until(lambda: http_ok(url), timeout=timeout, process=process, interval=interval)
