"""The git-ignored state folder (`.genvid/` by default) that the stack lives in.

Data (etcd, PostgreSQL, NATS, objects), credentials, logs and the settings other programs read
(`kubeconfig`, `env`) all sit here, so `make down` and `make up` pick up where they left off
and `make clean` is one `rm -rf`. Ports are kept too, so kubeconfigs and URLs stay the same
across restarts unless another program took the port meanwhile.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from genvid_devstack.process import free_port, tcp_open

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_state_dir() -> Path:
    return Path(os.environ.get("GENVID_STATE_DIR", REPO_ROOT / ".genvid")).resolve()


@dataclass
class State:
    root: Path
    _claimed: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def pid_file(self) -> Path:
        return self.root / "stack.pid"

    @property
    def ready_file(self) -> Path:
        return self.root / "ready"

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)

    def port(self, name: str, preferred: int | None = None) -> int:
        """The port `name` had last time (or `preferred`) if it is still free, else a free one.

        Claimed once per run: later calls return the same port even though it is busy now.
        """
        if name in self._claimed:
            return self._claimed[name]
        path = self.root / "ports.json"
        ports: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        port = ports.get(name, preferred)
        if port is None or tcp_open("127.0.0.1", port):
            port = free_port()
            while port in ports.values():
                port = free_port()
            ports[name] = port
            path.write_text(json.dumps(ports, indent=2, sort_keys=True))
        self._claimed[name] = port
        return port
