"""Containers as local processes: start, wait, signal, termination messages and log files.

Each container is a process group of its own (so a signal reaches everything it started) with
a parent-death signal (so nothing outlives a killed kubelet), started through
`genvid_devstack.process.spawn`. It runs in a private mount namespace where a host file of its
own is bind-mounted at its `terminationMessagePath`: containers can write /dev/termination-log
as on a cluster without touching the host's /dev or each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import shlex
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from genvid_devstack.process import Process, spawn

log = logging.getLogger(__name__)

MAX_TERMINATION_MESSAGE = 4096  # bytes, as the kubelet reads
_FALLBACK_LOG_LINES = 80  # FallbackToLogsOnError: the kubelet's tail of the log
_FALLBACK_LOG_BYTES = 2048


class StartError(Exception):
    """The process could not be started; reported as a terminated container (exit code 128)."""


@dataclass(frozen=True)
class ContainerLaunch:
    """Everything the runtime needs to start one container, already resolved."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    working_dir: Path
    termination_message_path: str


class MountPoints:
    """Mount-point files the kubelet had to create on the host, removed once nothing uses them.

    A bind mount needs an existing file to mount over (usually /dev/termination-log). Files we
    create are recorded in a ledger first, so a crashed kubelet's leftovers are removed by the
    next run. "Unused" means no container of ours holds it and no mount namespace on the host has
    it mounted: another process kubelet on this machine may be using the same path.
    """

    def __init__(self, ledger: Path) -> None:
        self._ledger = ledger
        self._users: dict[str, int] = {}
        self._created: set[str] = set(ledger.read_text().splitlines()) if ledger.exists() else set()

    def acquire(self, path: str) -> None:
        self._users[path] = self._users.get(path, 0) + 1
        if os.path.lexists(path):
            return
        self._created.add(path)
        self._save()
        try:
            Path(path).touch(exist_ok=False)
        except OSError as error:
            self.release(path)
            raise StartError(
                f"cannot create the mount point for terminationMessagePath {path}: {error}"
            ) from error

    def release(self, path: str) -> None:
        self._users[path] -= 1
        if self._users[path] == 0:
            del self._users[path]
            self.remove_unused()

    def remove_unused(self) -> None:
        for path in sorted(self._created):
            if path in self._users or mounted_anywhere(path):
                continue
            _remove_empty_file(path)
            self._created.discard(path)
        self._save()

    def _save(self) -> None:
        if self._created:
            self._ledger.write_text("".join(p + "\n" for p in sorted(self._created)))
        else:
            self._ledger.unlink(missing_ok=True)


def _remove_empty_file(path: str) -> None:
    """Only an empty regular file: a path someone has reused since is left alone."""
    with contextlib.suppress(OSError):
        if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) == 0:
            os.unlink(path)


def mounted_anywhere(path: str) -> bool:
    """Whether any mount namespace on the host has something mounted at `path`."""
    seen: set[str] = set()
    for namespace in Path("/proc").glob("[0-9]*/ns/mnt"):
        try:
            identity = os.readlink(namespace)
            if identity in seen:
                continue
            seen.add(identity)
            mountinfo = (namespace.parent.parent / "mountinfo").read_text()
        except OSError:
            continue  # the process exited meanwhile, or is not ours to inspect
        for line in mountinfo.splitlines():
            fields = line.split()
            mount_point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
            if mount_point == path:
                return True
    return False


def _namespaced_launcher() -> list[str]:
    """argv prefix that runs `MESSAGE_FILE MOUNT_POINT COMMAND...` in a private mount namespace.

    Inside it, a shell binds the private message file over the mount point and then execs the
    command, so the container's pid is the command's pid. Root needs only a mount namespace;
    anyone else gets one inside a user namespace where they are root.
    """
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    mount = shutil.which("mount") or "/bin/mount"
    shell = shutil.which("sh") or "/bin/sh"
    users = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    script = f'{shlex.quote(mount)} --bind "$1" "$2" || exit 126; shift 2; exec "$@"'
    return [unshare, *users, "--mount", "--propagation", "private", "--", shell, "-c", script]


def _resolve_executable(command: str, env: Mapping[str, str], cwd: Path) -> str:
    """Resolve as exec would, so a typo is reported as the runtime words it, not as exit 127."""
    if "/" in command:
        found = cwd / command
        if os.access(found, os.X_OK) and found.is_file():
            return command
    else:
        found_on_path = shutil.which(command, path=env.get("PATH", os.defpath))
        if found_on_path is not None:
            return found_on_path
    raise StartError(f'exec: "{command}": executable file not found in $PATH')


class ContainerProcess:
    """One run of a container: the process, its message file and its log."""

    def __init__(
        self, process: Process, message_file: Path, mount_point: str, mounts: MountPoints
    ) -> None:
        self.process = process
        self.started_at = dt.datetime.now(dt.UTC)
        self._message_file = message_file
        self._mount_point = mount_point
        self._mounts = mounts
        self._exit: asyncio.Task[int] = asyncio.get_running_loop().create_task(self._reap())

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _reap(self) -> int:
        await _exited(self.process)
        # Whatever the main process left in its group goes with it, as in a container. Killed
        # before reaping: until then the pid, and so the group id, cannot be reused.
        self.signal(signal.SIGKILL)
        code = self.process.popen.wait()
        self._mounts.release(self._mount_point)
        return 128 - code if code < 0 else code

    async def wait(self) -> int:
        """The exit code as a runtime reports it (128 + signal number for a signalled process)."""
        return await asyncio.shield(self._exit)

    def signal(self, sig: signal.Signals) -> None:
        if self.process.popen.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self, grace: float) -> int:
        """SIGTERM the group, SIGKILL it after `grace` seconds; returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.wait(), grace)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            return await self.wait()

    def termination_message(self, *, fallback_to_logs: bool) -> str:
        try:
            with self._message_file.open("rb") as message:
                text = message.read(MAX_TERMINATION_MESSAGE).decode(errors="replace")
        except FileNotFoundError:
            text = ""
        failed = self._exit.done() and self._exit.result() != 0
        if not text and fallback_to_logs and failed:
            return self.log_tail()
        return text

    def log_tail(self) -> str:
        tail = "\n".join(self.process.log_tail(_FALLBACK_LOG_LINES).splitlines())
        return tail.encode()[-_FALLBACK_LOG_BYTES:].decode(errors="replace")


async def _exited(process: Process) -> None:
    """Wait without a thread: a pidfd becomes readable when the process exits."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        await done
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


class Runtime:
    """Starts containers under `root_dir/pods/<namespace>_<name>_<uid>/`."""

    def __init__(self, root_dir: Path) -> None:
        self.root_dir = root_dir
        self.pods_dir = root_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.mounts = MountPoints(root_dir / "created-mount-points")
        self.mounts.remove_unused()  # what a crashed earlier run left
        self._launcher = _namespaced_launcher()

    def pod_dir(self, namespace: str, name: str, uid: str) -> Path:
        return self.pods_dir / f"{namespace}_{name}_{uid}"

    def base_env(self, hostname: str) -> dict[str, str]:
        """What an image would provide: a PATH that finds the project's `python` first."""
        path = os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]
        )
        env = {"PATH": path, "HOSTNAME": hostname, "HOME": os.environ.get("HOME", "/root")}
        for inherited in ("LANG", "LC_ALL", "TZ"):
            if inherited in os.environ:
                env[inherited] = os.environ[inherited]
        return env

    def start(self, pod_dir: Path, launch: ContainerLaunch) -> ContainerProcess:
        if not launch.working_dir.is_dir():
            raise StartError(f"workingDir {launch.working_dir} does not exist on this host")
        executable = _resolve_executable(launch.argv[0], launch.env, launch.working_dir)
        message_file = pod_dir / f"{launch.name}.termination-log"
        message_file.write_bytes(b"")
        self.mounts.acquire(launch.termination_message_path)
        try:
            process = spawn(
                launch.name,
                [
                    *self._launcher,
                    launch.name,  # $0 of the launcher's shell
                    message_file,
                    launch.termination_message_path,
                    executable,
                    *launch.argv[1:],
                ],
                log_dir=pod_dir,
                env=launch.env,
                cwd=launch.working_dir,
            )
        except OSError as error:
            self.mounts.release(launch.termination_message_path)
            raise StartError(str(error)) from error
        log.info("started %s/%s as pid %d", pod_dir.name, launch.name, process.pid)
        return ContainerProcess(process, message_file, launch.termination_message_path, self.mounts)
