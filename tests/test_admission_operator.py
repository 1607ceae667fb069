"""Admission under the concurrency caps and settlement of budgets, end to end on the real
stack: a real operator and api on a namespace and database of their own, workers in pods of
the process kubelet talking to the fake Veo server.

Caps here: 3 at once globally, 2 per user. A `kubectl get jobs --watch` records every Job
event, so "never more than the cap" is checked on everything the apiserver saw, not on samples.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from api_helpers import scratch_database
from genvid_devstack import apps
from genvid_devstack.process import Process
from genvid_devstack.state import State
from genvid_devstack.veo import FakeVeo, start_fake_veo
from pipeline_support import KUBECTL, GenVidClient, User, eventually, kubectl, kubectl_json

pytestmark = pytest.mark.stack
pytest_plugins = ["api_helpers"]

GLOBAL_CAP, USER_CAP = 3, 2
FAST_ESTIMATE = Decimal("0.60")  # 4 s of veo-3.0-fast-generate-001 at $0.15


@dataclass
class Stack:
    env: dict[str, str]
    namespace: str
    state: State
    api_url: str
    veo: FakeVeo
    operator: Process

    def restart_operator(self) -> None:
        self.operator = apps.start_operator(self.state, self.env, self.namespace)

    def user(self) -> User:
        return GenVidClient(self.api_url).new_user()

    def resource(self, generation_id: str) -> dict[str, Any]:
        return kubectl_json(
            self.env["KUBECONFIG"], "-n", self.namespace, "get", "vg", generation_id
        )

    def job_exists(self, generation_id: str) -> bool:
        out = kubectl(
            self.env["KUBECONFIG"], "-n", self.namespace,
            "get", "job", f"genvid-{generation_id}", "--ignore-not-found", "-o", "name",
        )  # fmt: skip
        return bool(out.strip())

    async def row(self, generation_id: str) -> asyncpg.Record:
        connection = await asyncpg.connect(self.env["DATABASE_URL"])
        try:
            row = await connection.fetchrow(
                "SELECT * FROM video_generation_jobs WHERE id = $1", uuid.UUID(generation_id)
            )
        finally:
            await connection.close()
        assert row is not None
        return row


@pytest.fixture(scope="module")
async def database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    async with scratch_database(stack_env, "genvid_admission") as url:
        yield url


@pytest.fixture(scope="module")
def stack(
    stack_env: dict[str, str], database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    state = State(tmp_path_factory.mktemp("admission"))
    state.prepare()
    namespace = f"adm-{uuid.uuid4().hex[:8]}"
    veo = start_fake_veo(state.logs, stack_env["STORAGE_EMULATOR_HOST"])
    worker_env = {
        "GENVID_BUCKET": stack_env["GENVID_BUCKET"],
        "STORAGE_EMULATOR_HOST": stack_env["STORAGE_EMULATOR_HOST"],
        "GENVID_PROVIDER": "veo",
        "GOOGLE_API_KEY": "test-key",
        "GENVID_VEO_BASE_URL": veo.base_url,
        "GENVID_POLL_INTERVAL_SECONDS": "0.3",
    }
    apps.kubectl_apply(
        KUBECTL, Path(stack_env["KUBECONFIG"]), apps.namespace_objects(namespace, worker_env)
    )
    env = {
        **stack_env,
        "DATABASE_URL": database,
        "GENVID_OUTBOX_INTERVAL_SECONDS": "0.5",
        "GENVID_OUTBOX_GRACE_SECONDS": "1",
        "GENVID_GLOBAL_MAX_ACTIVE": str(GLOBAL_CAP),
        "GENVID_USER_MAX_ACTIVE": str(USER_CAP),
        "GENVID_ADMISSION_INTERVAL_SECONDS": "0.5",
        "GENVID_RESYNC_SECONDS": "5",
    }
    apps.migrate(env)
    operator = apps.start_operator(state, env, namespace)
    port = state.port("api")
    api = apps.start_api(state, env, namespace, port)
    stack = Stack(env, namespace, state, f"http://127.0.0.1:{port}", veo, operator)
    try:
        yield stack
    finally:
        api.stop()
        stack.operator.stop()
        veo.stop()


@dataclass
class JobWatch:
    """Every Job event in the namespace, as the set of unfinished Jobs after each; the peaks
    are computed at the end (owners are known once every request has been answered)."""

    owners: dict[str, str]
    unfinished: set[str] = field(default_factory=set)
    snapshots: list[frozenset[str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    process: subprocess.Popen[str] | None = None

    @property
    def peak(self) -> int:
        return max((len(snapshot) for snapshot in self.snapshots), default=0)

    @property
    def peak_per_owner(self) -> int:
        counts = (
            Counter(self.owners[name] for name in snapshot).most_common(1)[0][1]
            for snapshot in self.snapshots
            if snapshot
        )
        return max(counts, default=0)

    def start(self, stack: Stack) -> None:
        template = (
            '{.metadata.name}{" "}{.status.succeeded}{" "}{.status.failed}{" "}'
            '{.status.conditions[?(@.status=="True")].type}{"\\n"}'
        )
        self.process = subprocess.Popen(
            [
                KUBECTL,
                "-n",
                stack.namespace,
                "get",
                "jobs",
                "--watch",
                "-o",
                f"jsonpath={template}",
            ],
            env={"KUBECONFIG": stack.env["KUBECONFIG"], "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if not line.strip():
                continue
            name, *rest = line.split()
            generation = name.removeprefix("genvid-")
            self.seen.add(generation)
            if "Complete" in rest or "Failed" in rest:
                self.unfinished.discard(generation)
            else:
                self.unfinished.add(generation)
            self.snapshots.append(frozenset(self.unfinished))

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def submit(stack: Stack, user: User, tag: str, count: int) -> list[str]:
    return [user.generate(f"{tag} scene {n}")["id"] for n in range(count)]


def watch_positions(user: User, generation_id: str) -> tuple[list[int], set[str]]:
    """The queue positions a waiting generation showed until it was admitted, and its
    reasons meanwhile."""
    positions: list[int] = []
    reasons: set[str] = set()

    def admitted() -> bool:
        body = user.get(generation_id)
        if body["queue_position"] is not None:
            positions.append(body["queue_position"])
        reasons.add(body["reason"] or "")
        return body["status"] != "QUEUED" or body["reason"] != "WaitingForCapacity"

    eventually(admitted, what=f"{generation_id} to be admitted", timeout=240)
    return positions, reasons


async def test_caps_hold_and_a_burst_does_not_starve_a_single_request(stack: Stack) -> None:
    tag = f"capped-{uuid.uuid4().hex[:6]}"
    stack.veo.add_scenario(tag, polls_until_done=10)
    burst, middle, single = stack.user(), stack.user(), stack.user()
    owners: dict[str, str] = {}
    watch = JobWatch(owners)
    watch.start(stack)
    try:
        ids_burst = submit(stack, burst, tag, 6)
        ids_middle = submit(stack, middle, tag, 3)
        ids_single = submit(stack, single, tag, 1)
        for owner, ids in (("burst", ids_burst), ("middle", ids_middle), ("single", ids_single)):
            owners.update(dict.fromkeys(ids, owner))
        last = ids_burst[-1]
        waiting = eventually(
            lambda: (
                (vg := stack.resource(last)).get("status", {}).get("reason") == "WaitingForCapacity"
                and vg
            ),
            what="the burst's last to wait",
        )
        admitted = next(c for c in waiting["status"]["conditions"] if c["type"] == "Admitted")
        assert (admitted["status"], admitted["reason"]) == ("False", "WaitingForCapacity")
        assert waiting["status"]["queuePosition"] >= 1
        assert not stack.job_exists(last)
        positions, reasons = watch_positions(burst, last)
        assert "WaitingForCapacity" in reasons
        assert positions and positions == sorted(positions, reverse=True)

        everything = [*ids_burst, *ids_middle, *ids_single]
        finals = {
            gid: user.wait_final(gid, timeout=300)
            for user, ids in ((burst, ids_burst), (middle, ids_middle), (single, ids_single))
            for gid in ids
        }
        assert {body["status"] for body in finals.values()} == {"SUCCEEDED"}
        eventually(lambda: watch.seen >= set(everything), what="every Job in the watch")
    finally:
        watch.stop()
    assert 0 < watch.peak <= GLOBAL_CAP
    assert watch.peak_per_owner <= USER_CAP
    rows = {gid: await stack.row(gid) for gid in everything}
    single_admitted = rows[ids_single[0]]["admitted_at"]
    assert all(single_admitted < rows[gid]["admitted_at"] for gid in ids_burst[-2:])
    assert all(row["settled_at"] is not None for row in rows.values())
    assert {row["charged_micros"] for row in rows.values()} == {600_000}


async def test_success_charges_and_a_safety_filter_refunds(stack: Stack) -> None:
    user = stack.user()
    tag = f"settle-{uuid.uuid4().hex[:6]}"
    stack.veo.add_scenario(f"{tag} blocked", outcome="safety_filtered")
    done = user.generate(f"{tag} fine")["id"]
    blocked = user.generate(f"{tag} blocked")["id"]
    assert user.wait_final(done)["status"] == "SUCCEEDED"
    final = user.wait_final(blocked)
    assert (final["status"], final["reason"], final["cost_usd"]) == (
        "FAILED", "SafetyFiltered", "0.00",
    )  # fmt: skip
    assert user.get(done)["cost_usd"] == "0.60"
    usage = user.api.http.get("/me/usage", headers=user.headers).json()
    assert (usage["spent_usd"], usage["reserved_usd"]) == ("0.60", "0.00")
    assert (usage["active"], usage["waiting"]) == (0, 0)
    assert (await stack.row(blocked))["charged_micros"] == 0


async def test_cancel_while_waiting_refunds_and_never_makes_a_job(stack: Stack) -> None:
    user = stack.user()
    tag = f"hold-{uuid.uuid4().hex[:6]}"
    stack.veo.add_scenario(tag, polls_until_done=40)
    running = submit(stack, user, tag, USER_CAP)
    waiting = user.generate(f"{tag} waiting")["id"]
    eventually(
        lambda: user.get(waiting)["reason"] == "WaitingForCapacity", what="the third to wait"
    )
    assert user.cancel(waiting).status_code == 202
    final = user.wait_final(waiting)
    assert (final["status"], final["cost_usd"]) == ("CANCELED", "0.00")
    assert not stack.job_exists(waiting)
    row = await stack.row(waiting)
    assert (row["charged_micros"], row["admitted_at"]) == (0, None)
    usage = user.api.http.get("/me/usage", headers=user.headers).json()
    assert usage["reserved_usd"] == "1.20"  # the two running ones only
    for gid in running:
        assert user.wait_final(gid, timeout=240)["status"] == "SUCCEEDED"
    usage = user.api.http.get("/me/usage", headers=user.headers).json()
    assert (usage["spent_usd"], usage["reserved_usd"]) == ("1.20", "0.00")


async def test_operator_killed_while_generations_wait_and_run_keeps_the_caps(
    stack: Stack,
) -> None:
    tag = f"restart-{uuid.uuid4().hex[:6]}"
    stack.veo.add_scenario(tag, polls_until_done=15)
    first, second = stack.user(), stack.user()
    owners: dict[str, str] = {}
    watch = JobWatch(owners)
    watch.start(stack)
    try:
        ids_first = submit(stack, first, tag, 4)
        ids_second = submit(stack, second, tag, 4)
        owners.update(dict.fromkeys(ids_first, "first"))
        owners.update(dict.fromkeys(ids_second, "second"))
        eventually(
            lambda: len(watch.unfinished) == GLOBAL_CAP, what="the cap to be reached", timeout=120
        )
        stack.operator.popen.send_signal(signal.SIGKILL)
        stack.operator.stop()
        stack.restart_operator()
        for user, ids in ((first, ids_first), (second, ids_second)):
            for gid in ids:
                assert user.wait_final(gid, timeout=300)["status"] == "SUCCEEDED"
        eventually(lambda: watch.seen >= {*ids_first, *ids_second}, what="every Job seen")
    finally:
        watch.stop()
    assert watch.peak == GLOBAL_CAP
    assert watch.peak_per_owner <= USER_CAP
    for gid in [*ids_first, *ids_second]:
        row = await stack.row(gid)
        assert row["settled_at"] is not None and row["charged_micros"] == 600_000
