"""The api as a real uvicorn process: streaming, shutdown and two replicas need one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.processes import free_port


@dataclass
class ApiProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_api_process(env: dict[str, str], log: Path) -> ApiProcess:
    port = free_port()
    handle = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "genvid_api.main:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "10",
        ],
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    handle.close()
    server = ApiProcess(url=f"http://127.0.0.1:{port}", process=process, log=log)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"api process exited:\n{server.log_tail()}")
        try:
            healthz = httpx.get(f"{server.url}/healthz", timeout=1, trust_env=False)
            if healthz.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"api process did not start:\n{server.log_tail()}")
        time.sleep(0.1)
