"""`make up` / `make down` as a developer uses them: settings in the env file, data kept
across restarts, and nothing left running after `down`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from genvid_devstack.stack import read_env_file

pytestmark = pytest.mark.stack


def devstack(command: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "genvid_devstack", command, f"--state-dir={state_dir}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def process_groups() -> dict[int, int]:
    """pid -> process group of every process on the machine."""
    groups = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                groups[int(entry.name)] = int(fields[2])
    return groups


async def test_up_and_down_keep_data_and_leave_no_process(tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        up = devstack("up", state)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "stack ready" in up.stdout
        env = read_env_file(state / "env")
        assert set(env) >= {
            "DATABASE_URL", "NATS_URL", "STORAGE_EMULATOR_HOST", "GENVID_BUCKET", "KUBECONFIG",
        }  # fmt: skip
        assert env["KUBECONFIG"] == str(state / "kubeconfig")
        assert devstack("status", state).returncode == 0

        connection = await asyncpg.connect(env["DATABASE_URL"])
        await connection.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('x')")
        await connection.close()

        groups = {pid for pid, _ in json.loads((state / "pids.json").read_text())}
        members = [pid for pid, group in process_groups().items() if group in groups]
        assert len(members) >= len(groups)

        down = devstack("down", state)
        assert down.returncode == 0, down.stdout + down.stderr
        left = [pid for pid, group in process_groups().items() if group in groups]
        assert left == []
        assert devstack("status", state).returncode == 1

        again = devstack("up", state)
        assert again.returncode == 0, again.stdout + again.stderr
        env = read_env_file(state / "env")
        connection = await asyncpg.connect(env["DATABASE_URL"])
        assert await connection.fetchval("SELECT note FROM kept") == "x"
        await connection.close()
    finally:
        devstack("down", state)
