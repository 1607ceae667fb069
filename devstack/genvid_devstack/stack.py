"""The whole local stack, started in dependency order and stopped in reverse.

`run` is the supervisor: `make dev` runs it in the foreground, `make up` starts it detached
and waits for its ready file, `make down` sends it SIGTERM. Whatever starts it, the stack
stops as one: if any component exits, the supervisor stops the rest and exits non-zero.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from genvid_devstack import apps, prometheus
from genvid_devstack.binaries import ensure_binaries
from genvid_devstack.controlplane import NAMESPACE, NODE_NAME, start_control_plane
from genvid_devstack.nats import start_nats
from genvid_devstack.postgres import start_postgres
from genvid_devstack.process import Process, StartupError, spawn, wait_until
from genvid_devstack.state import REPO_ROOT, State
from genvid_devstack.storage import start_storage

BUCKET = "genvid-previews"
API_PORT = 8000
CRD_DIR = REPO_ROOT / "crds"


@dataclass
class Stack:
    state: State
    processes: list[Process] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        self.state.ready_file.unlink(missing_ok=True)
        (self.state.root / "pids.json").unlink(missing_ok=True)

    def _track(self, process: Process) -> None:
        """Record pids on disk so `down` can sweep them even if the supervisor was killed."""
        self.processes.append(process)
        owned = [[p.pid, process_start(p.pid)] for p in self.processes]
        (self.state.root / "pids.json").write_text(json.dumps(owned))


def process_start(pid: int) -> str | None:
    """When `pid` started (in clock ticks since boot): with the pid, it names one process.

    A recorded pid alone is not enough to signal: after a reboot or a crash it may belong to
    an unrelated program.
    """
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def write_env_file(path: Path, env: Mapping[str, str]) -> None:
    lines = [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
    path.write_text("\n".join(lines) + "\n")


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


def _node_ready(kubectl: Path, kubeconfig: Path) -> bool:
    result = subprocess.run(
        [
            kubectl,
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        ],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
    )
    return result.returncode == 0 and result.stdout.strip() == "True"


def apply_crds(kubectl: Path, kubeconfig: Path) -> None:
    """Server-side apply, then wait until the apiserver serves them."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    for command in (
        ["apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR)],
        ["wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR)],
    ):
        result = subprocess.run([kubectl, *command], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise StartupError(f"kubectl {command[0]} {CRD_DIR}: {result.stderr.strip()}")


def start(state: State) -> Stack:
    """Start every component; on any failure, stop what was started and raise."""
    state.prepare()
    stack = Stack(state)
    try:
        _start_into(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def _start_into(stack: Stack) -> None:
    state = stack.state
    external_db = os.environ.get("DATABASE_URL")
    if external_db:
        database_url = external_db
    else:
        postgres = start_postgres(state.root, state.logs)
        stack._track(postgres.process)
        database_url = postgres.url
    nats = start_nats(state.root, state.logs)
    stack._track(nats.process)
    storage = start_storage(state.root, state.logs, BUCKET)
    stack._track(storage.process)

    external_kubeconfig = os.environ.get("KUBECONFIG")
    kubectl = Path(sys.executable).parent / "kubectl"
    binaries = None
    control_plane = None
    if external_kubeconfig:
        kubeconfig = Path(external_kubeconfig)
    else:
        binaries = ensure_binaries()
        control_plane = start_control_plane(state, binaries)
        for process in control_plane.processes:
            stack._track(process)
        kubelet = spawn(
            "kubelet",
            [
                sys.executable,
                "-m",
                "genvid_devstack.kubelet",
                f"--kubeconfig={state.root / 'kubelet.kubeconfig'}",
                f"--scheduler-kubeconfig={state.root / 'scheduler.kubeconfig'}",
                f"--node-name={NODE_NAME}",
                f"--root-dir={state.root / 'kubelet'}",
                f"--port={state.port('kubelet')}",
                f"--tls-cert={control_plane.pki.kubelet_serving.cert}",
                f"--tls-key={control_plane.pki.kubelet_serving.key}",
            ],
            log_dir=state.logs,
        )
        stack._track(kubelet)
        kubeconfig = state.kubeconfig
        wait_until(
            lambda: _node_ready(kubectl, kubeconfig),
            what="kubelet (node Ready)",
            timeout=60,
            process=kubelet,
            interval=0.5,
        )
    apply_crds(kubectl, kubeconfig)

    env = {
        "DATABASE_URL": database_url,
        "NATS_URL": nats.url,
        "NATS_MONITOR_URL": nats.monitor_url,
        "STORAGE_EMULATOR_HOST": storage.emulator_host,
        "GENVID_BUCKET": storage.bucket,
        "KUBECONFIG": str(kubeconfig),
        "GENVID_NAMESPACE": NAMESPACE,
    }
    worker_env = apps.worker_env(storage.emulator_host, storage.bucket)
    apps.kubectl_apply(kubectl, kubeconfig, apps.namespace_objects(NAMESPACE, worker_env))
    apps.migrate(env)
    stack._track(apps.start_operator(state, env, NAMESPACE))
    api_port = state.port("api", preferred=API_PORT)
    stack._track(apps.start_api(state, env, NAMESPACE, api_port))
    stack.env = {**env, "GENVID_API_URL": f"http://127.0.0.1:{api_port}"}
    if binaries is not None and control_plane is not None:
        # Built with the control plane: with an external cluster there is none to scrape with.
        prometheus.write_targets(
            state.root,
            NAMESPACE,
            prometheus.target_groups(
                NAMESPACE,
                {
                    "api": f"127.0.0.1:{state.port('api-metrics')}",
                    "operator": f"127.0.0.1:{state.port('operator-metrics')}",
                },
            ),
        )
        prometheus.write_rules(
            state.root, NAMESPACE, prometheus.render_rules(binaries.helm, NAMESPACE)
        )
        server = prometheus.start_prometheus(
            state, binaries.prometheus, apiserver=control_plane.server, pki=control_plane.pki
        )
        stack._track(server.process)
        stack.env["PROMETHEUS_URL"] = server.url
    write_env_file(state.env_file, stack.env)


def _first_exit(stack: Stack) -> Process:
    """Block until a component exits; a healthy stack never returns from here."""
    while True:
        for process in stack.processes:
            if not process.alive():
                return process
        time.sleep(0.5)


def run(state: State) -> int:
    """The supervisor: start, announce readiness, wait for a signal or a failure, stop."""

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # even where the parent shell ignored it
    state.prepare()
    state.pid_file.write_text(f"{os.getpid()} {process_start(os.getpid())}")
    stack: Stack | None = None
    try:
        started = time.monotonic()
        stack = start(state)
        state.ready_file.write_text(f"{time.monotonic() - started:.1f}\n")
        print(f"genvid: stack ready in {time.monotonic() - started:.1f}s", flush=True)
        for key, value in stack.env.items():
            print(f"  {key}={value}", flush=True)
        print(f"  (source {state.env_file}; logs in {state.logs})", flush=True)
        dead = _first_exit(stack)
        print(
            f"genvid: {dead.name} exited with {dead.popen.returncode}; stopping.\n"
            f"{dead.log_tail()}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    except KeyboardInterrupt:
        return 0
    except StartupError as error:
        print(f"genvid: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
        state.pid_file.unlink(missing_ok=True)
        print("genvid: stack stopped", flush=True)


def up(state: State, timeout: float = 1800) -> int:
    """Start the supervisor in the background and return once the stack is ready."""
    if _running_pid(state) is not None:
        print(f"genvid: already running; source {state.env_file}")
        return 0
    state.prepare()
    state.ready_file.unlink(missing_ok=True)
    log = (state.logs / "stack.log").open("ab")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "genvid_devstack", "run", f"--state-dir={state.root}"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not state.ready_file.exists():
        if supervisor.poll() is not None or time.monotonic() > deadline:
            print((state.logs / "stack.log").read_text()[-4000:], file=sys.stderr)
            print("genvid: the stack did not start (log above).", file=sys.stderr)
            return 1
        time.sleep(0.3)
    print(f"genvid: stack ready in {state.ready_file.read_text().strip()}s")
    for key, value in read_env_file(state.env_file).items():
        print(f"  {key}={value}")
    print(f"  source {state.env_file}")
    return 0


def _running_pid(state: State) -> int | None:
    try:
        pid_text, started = state.pid_file.read_text().split()
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    return pid if process_start(pid) == started else None


def down(state: State, timeout: float = 60) -> int:
    """Stop the supervisor, then sweep any process it could not stop."""
    pid = _running_pid(state)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _running_pid(state) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
    pids_file = state.root / "pids.json"
    if pids_file.exists():
        for child, started in json.loads(pids_file.read_text()):
            if process_start(child) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child, signal.SIGKILL)
        pids_file.unlink()
    state.ready_file.unlink(missing_ok=True)
    print("genvid: stack stopped")
    return 0


def status(state: State) -> int:
    if _running_pid(state) is None or not state.ready_file.exists():
        print("genvid: stack not running")
        return 1
    print(f"genvid: stack running; source {state.env_file}")
    return 0
