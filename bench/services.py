"""The processes a run needs: PostgreSQL and NATS from the dev stack's modules, the api as a
real uvicorn process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.config import BUCKET, JWT_SECRET, REPO, SLOW_STATEMENT_MS, TOKEN_TTL_SECONDS
from bench.gcprobe import GC_FILE_ENV
from genvid_devstack import apps
from genvid_devstack.nats import Nats, start_nats
from genvid_devstack.postgres import Postgres, start_postgres
from genvid_devstack.process import Process, free_port, http_ok, spawn, wait_until


@dataclass
class Services:
    root: Path
    postgres: Postgres | None = None
    nats: Nats | None = None
    api: Process | None = None
    api_url: str = ""

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def gc_file(self) -> Path:
        return self.logs / "api-gc-pauses.txt"

    @property
    def database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url

    def start_postgres(self, settings: dict[str, str]) -> None:
        """Start, set the preload libraries and `settings` (ALTER SYSTEM), restart."""
        self.postgres = start_postgres(self.root, self.logs)
        wanted = {
            "shared_preload_libraries": "pg_stat_statements,auto_explain",
            **settings,
        }
        current = asyncio.run(alter_system(self.postgres.url, wanted))
        if current != wanted:  # a restart is needed for the preload libraries (or settings)
            self.postgres.process.stop()
            self.postgres = start_postgres(self.root, self.logs)
        slow = {"auto_explain.log_min_duration": f"{SLOW_STATEMENT_MS}ms"}
        asyncio.run(alter_system(self.postgres.url, slow))

    def start_nats(self) -> None:
        self.nats = start_nats(self.root, self.logs)

    def api_env(self) -> dict[str, str]:
        assert self.nats is not None
        kubeconfig = self.root / "kubeconfig-unused"
        kubeconfig.write_text(_UNUSED_KUBECONFIG.format(port=free_port()))
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("GENVID_")
            and key not in ("DATABASE_URL", "NATS_URL", "KUBECONFIG", "STORAGE_EMULATOR_HOST")
        }
        return {
            **inherited,
            "GENVID_DATABASE_URL": self.database_url,
            "GENVID_NATS_URL": self.nats.url,
            # Signing is local computation; the URLs point at a storage emulator never fetched.
            "GENVID_STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
            "GENVID_BUCKET": BUCKET,
            "GENVID_SIGNING_MODE": "local",
            "GENVID_KUBECONFIG": str(kubeconfig),
            "GENVID_NAMESPACE": "genvid-bench",
            "GENVID_JWT_SECRET": JWT_SECRET,
            "GENVID_ACCESS_TOKEN_TTL_SECONDS": str(TOKEN_TTL_SECONDS),
            "GENVID_OUTBOX_ENABLED": "false",
            # Every simulated user comes from this one address.
            "GENVID_RATE_LIMITS": "off",
        }

    def migrate(self) -> None:
        apps.migrate({"DATABASE_URL": self.database_url, "GENVID_DATABASE_URL": self.database_url})

    def start_api(self) -> None:
        """One uvicorn worker, as the chart runs it (replicas scale out). Not `--workers N`:
        measured here, every response then takes ~40 ms more (Nagle and delayed ACK: the
        socket uvicorn binds for its workers has proto 0, and asyncio sets TCP_NODELAY only on
        sockets whose proto is IPPROTO_TCP)."""
        port = free_port()
        env = self.api_env()
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
        env[GC_FILE_ENV] = str(self.gc_file)
        self.api = spawn(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "bench.gcprobe:create_bench_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "5",
            ],
            log_dir=self.logs,
            env=env,
            cwd=REPO,
        )
        self.api_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{self.api_url}/healthz"), timeout=90, process=self.api)

    def stop(self) -> None:
        for process in (
            self.api,
            self.nats.process if self.nats else None,
            self.postgres.process if self.postgres else None,
        ):
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop()
        self.api = None

    def log_tails(self) -> str:
        parts = []
        for process in (
            self.api,
            self.postgres.process if self.postgres else None,
            self.nats.process if self.nats else None,
        ):
            if process is not None:
                parts.append(f"--- {process.log_path} ---\n{process.log_tail(40)}")
        return "\n".join(parts)


_UNUSED_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: none
  cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
users:
- name: none
  user: {{token: unused}}
contexts:
- name: none
  context: {{cluster: none, user: none}}
current-context: none
"""


@contextlib.asynccontextmanager
async def connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection per step of the run, closed whatever happens in it."""
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def alter_system(url: str, settings: dict[str, str]) -> dict[str, str]:
    """Apply `settings` with ALTER SYSTEM; return what was in force before."""
    async with connection(url) as conn:
        before = {}
        for name, value in settings.items():
            before[name] = await conn.fetchval(
                "SELECT setting FROM pg_settings WHERE name = $1", name
            )
            if name == "shared_preload_libraries":  # a list: one quoted item each
                quoted = ", ".join(_quote(item.strip()) for item in value.split(","))
            else:
                quoted = _quote(value)
            await conn.execute(f"ALTER SYSTEM SET {name} = {quoted}")
        await conn.execute("SELECT pg_reload_conf()")
        return {k: str(v) for k, v in before.items()}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
