"""Admission under the concurrency caps and settlement of budgets, end to end on the real
stack: the module's own operator, api, database and namespace (the `pipeline` fixture), workers
in pods of the process kubelet talking to the fake Veo server.

Caps here: 3 at once globally, 2 per user. A `kubectl get jobs --watch` records every Job
event, so "never more than the cap" is checked on everything the apiserver saw, not on samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from support.api import Account
from support.database import fetch, ledger
from support.kube import kubectl_watch
from support.pipeline import (
    Generation,
    Pipeline,
    PipelineSettings,
    job_row,
    submit,
    until_final,
    until_status,
    usage,
)
from support.polling import eventually

pytestmark = pytest.mark.stack

GLOBAL_CAP, USER_CAP = 3, 2
FAST_MICROS = 600_000  # what 4 s of veo-3.0-fast-generate-001 cost, at $0.15 a second
FINALIZER = "genvid.io/operator"  # kopf's, which the operator no longer needs


@pytest.fixture(scope="module")
def pipeline_settings() -> PipelineSettings:
    return PipelineSettings(
        env={
            "GENVID_GLOBAL_MAX_ACTIVE": str(GLOBAL_CAP),
            "GENVID_USER_MAX_ACTIVE": str(USER_CAP),
            "GENVID_ADMISSION_INTERVAL_SECONDS": "0.5",
            "GENVID_RESYNC_SECONDS": "5",
        }
    )


def resource(pipeline: Pipeline, generation_id: str) -> dict[str, Any]:
    return pipeline.get("vg", generation_id)


def job_exists(pipeline: Pipeline, generation_id: str) -> bool:
    out = pipeline.kubectl(
        "get", "job", f"genvid-{generation_id}", "--ignore-not-found", "-o", "name"
    )
    return bool(out.strip())


@dataclass
class JobWatch:
    """Every Job event in the namespace, as the set of unfinished Jobs after each; the peaks
    are computed at the end (owners are known once every request has been answered)."""

    owners: dict[str, str] = field(default_factory=dict)
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

    def start(self, pipeline: Pipeline) -> None:
        template = (
            '{.metadata.name}{" "}{.status.succeeded}{" "}{.status.failed}{" "}'
            '{.status.conditions[?(@.status=="True")].type}{"\\n"}'
        )
        self.process = kubectl_watch(
            pipeline.env["KUBECONFIG"],
            "-n", pipeline.namespace, "get", "jobs", "--watch", "-o", f"jsonpath={template}",
        )  # fmt: skip
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


async def submit_many(pipeline: Pipeline, user: Account, tag: str, count: int) -> list[Generation]:
    return [await submit(pipeline.api, user, f"{tag} scene {n}") for n in range(count)]


@contextlib.contextmanager
def watching_jobs(pipeline: Pipeline) -> Iterator[JobWatch]:
    watch = JobWatch()
    watch.start(pipeline)
    try:
        yield watch
    finally:
        watch.stop()


async def submit_watched(
    pipeline: Pipeline, watch: JobWatch, user: Account, tag: str, count: int
) -> list[Generation]:
    """`count` generations of `user`, whose Jobs the watch counts as the user's."""
    generations = await submit_many(pipeline, user, tag, count)
    watch.owners.update(dict.fromkeys((g.id for g in generations), user.user_id))
    return generations


async def watch_positions(generation: Generation) -> tuple[list[int], set[str]]:
    """The queue positions a waiting generation showed until it was admitted, and its
    reasons meanwhile."""
    positions: list[int] = []
    reasons: set[str] = set()

    async def admitted() -> bool:
        body = await generation.get()
        if body["queue_position"] is not None:
            positions.append(body["queue_position"])
        reasons.add(body["reason"] or "")
        return body["status"] != "QUEUED" or body["reason"] != "WaitingForCapacity"

    await eventually(admitted, what=f"{generation.id} to be admitted", seconds=240, interval=0.25)
    return positions, reasons


async def test_caps_hold_and_a_burst_does_not_starve_a_single_request(
    pipeline: Pipeline,
) -> None:
    tag = f"capped-{uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(tag, polls_until_done=10)
    burst, middle, single = [await pipeline.api.register("u") for _ in range(3)]
    with watching_jobs(pipeline) as watch:
        of_burst = await submit_watched(pipeline, watch, burst, tag, 6)
        of_middle = await submit_watched(pipeline, watch, middle, tag, 3)
        of_single = await submit_watched(pipeline, watch, single, tag, 1)
        last = of_burst[-1]
        waiting = await eventually(
            lambda: (
                (vg := resource(pipeline, last.id)).get("status", {}).get("reason")
                == "WaitingForCapacity"
                and vg
            ),
            what="the burst's last to wait",
            seconds=90,
            interval=0.25,
        )
        admitted = next(c for c in waiting["status"]["conditions"] if c["type"] == "Admitted")
        assert (admitted["status"], admitted["reason"]) == ("False", "WaitingForCapacity")
        assert waiting["status"]["phase"] == "QUEUED"
        assert waiting["status"]["queuePosition"] >= 1
        assert not job_exists(pipeline, last.id)
        positions, reasons = await watch_positions(last)
        assert "WaitingForCapacity" in reasons
        assert positions and positions == sorted(positions, reverse=True)

        finals = {
            g.id: await g.wait_final(seconds=300) for g in [*of_burst, *of_middle, *of_single]
        }
        assert {body["status"] for body in finals.values()} == {"SUCCEEDED"}
        await eventually(
            lambda: watch.seen >= set(finals),
            what="every Job in the watch",
            seconds=90,
            interval=0.25,
        )
    assert 0 < watch.peak <= GLOBAL_CAP
    assert watch.peak_per_owner <= USER_CAP
    rows = {gid: await job_row(pipeline.env["DATABASE_URL"], gid) for gid in finals}
    single_admitted = rows[of_single[0].id]["admitted_at"]
    assert all(single_admitted < rows[g.id]["admitted_at"] for g in of_burst[-2:])
    assert all(row["settled_at"] is not None for row in rows.values())
    assert {row["charged_micros"] for row in rows.values()} == {FAST_MICROS}


async def test_success_charges_and_a_safety_filter_refunds(pipeline: Pipeline) -> None:
    user = await pipeline.api.register("u")
    tag = f"settle-{uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(f"{tag} blocked", outcome="safety_filtered")
    done = await submit(pipeline.api, user, f"{tag} fine")
    blocked = await submit(pipeline.api, user, f"{tag} blocked")
    assert (await done.wait_final())["status"] == "SUCCEEDED"
    final = await blocked.wait_final()
    assert (final["status"], final["reason"], final["cost_usd"]) == (
        "FAILED", "SafetyFiltered", "0.00",
    )  # fmt: skip
    assert (await done.get())["cost_usd"] == "0.60"
    spend = await usage(pipeline, user)
    assert (spend["spent_usd"], spend["reserved_usd"]) == ("0.60", "0.00")
    assert (spend["active"], spend["waiting"]) == (0, 0)
    assert (await job_row(pipeline.env["DATABASE_URL"], blocked.id))["charged_micros"] == 0


async def test_cancel_while_waiting_refunds_and_never_makes_a_job(pipeline: Pipeline) -> None:
    user = await pipeline.api.register("u")
    tag = f"hold-{uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(tag, polls_until_done=40)
    running = await submit_many(pipeline, user, tag, USER_CAP)
    waiting = await submit(pipeline.api, user, f"{tag} waiting")

    async def is_waiting() -> bool:
        return (await waiting.get())["reason"] == "WaitingForCapacity"

    await eventually(is_waiting, what="the third to wait", seconds=90, interval=0.25)
    assert await waiting.cancel() == 202
    final = await waiting.wait_final()
    assert (final["status"], final["cost_usd"]) == ("CANCELED", "0.00")
    assert not job_exists(pipeline, waiting.id)
    row = await job_row(pipeline.env["DATABASE_URL"], waiting.id)
    assert (row["charged_micros"], row["admitted_at"]) == (0, None)
    assert (await usage(pipeline, user))["reserved_usd"] == "1.20"  # the two running ones only
    for generation in running:
        assert (await generation.wait_final(seconds=240))["status"] == "SUCCEEDED"
    spend = await usage(pipeline, user)
    assert (spend["spent_usd"], spend["reserved_usd"]) == ("1.20", "0.00")


async def test_operator_killed_while_generations_wait_and_run_keeps_the_caps(
    pipeline: Pipeline,
) -> None:
    tag = f"restart-{uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(tag, polls_until_done=15)
    first, second = await pipeline.api.register("u"), await pipeline.api.register("u")
    with watching_jobs(pipeline) as watch:
        everything = [
            *await submit_watched(pipeline, watch, first, tag, 4),
            *await submit_watched(pipeline, watch, second, tag, 4),
        ]
        await eventually(
            lambda: len(watch.unfinished) == GLOBAL_CAP,
            what="the cap to be reached",
            seconds=120,
            interval=0.25,
        )
        pipeline.operator.popen.send_signal(signal.SIGKILL)
        pipeline.operator.stop()
        pipeline.restart_operator()
        for generation in everything:
            assert (await generation.wait_final(seconds=300))["status"] == "SUCCEEDED"
        await eventually(
            lambda: watch.seen >= {g.id for g in everything},
            what="every Job seen",
            seconds=90,
            interval=0.25,
        )
    assert watch.peak == GLOBAL_CAP
    assert watch.peak_per_owner <= USER_CAP
    for generation in everything:
        row = await job_row(pipeline.env["DATABASE_URL"], generation.id)
        assert row["settled_at"] is not None and row["charged_micros"] == FAST_MICROS


async def deleted(pipeline: Pipeline, *generations: Generation, wait: bool = True) -> None:
    """`kubectl delete` the generations' VideoGenerations, as an administrator would."""
    names = [generation.id for generation in generations]
    await asyncio.to_thread(pipeline.kubectl, "delete", "vg", *names, f"--wait={wait}")


async def test_a_generation_deleted_while_the_operator_runs_ends_canceled_and_frees_its_place(
    pipeline: Pipeline,
) -> None:
    user = await pipeline.api.register("u")
    tag = f"deleted-{uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(tag, polls_until_done=60)
    running, kept = await submit_many(pipeline, user, tag, USER_CAP)
    first_waiting, second_waiting = await submit_many(pipeline, user, f"{tag} waits", 2)
    await until_status(running, "RUNNING")
    await until_status(second_waiting, "QUEUED", "WaitingForCapacity")

    await deleted(pipeline, second_waiting)
    await until_status(second_waiting, "CANCELED", "ResourceDeleted")
    async with running.stream() as reader:
        await deleted(pipeline, running)
        events = await until_final(reader)
    last = events[-1].data
    assert (last["status"], last["reason"], last["cost_usd"]) == (
        "CANCELED", "ResourceDeleted", "0.60",
    )  # fmt: skip
    # The place the deleted one held goes to the next in line.
    await until_status(first_waiting, "RUNNING")
    spend = await usage(pipeline, user)
    assert (spend["active"], spend["waiting"]) == (USER_CAP, 0)
    assert (spend["spent_usd"], spend["reserved_usd"]) == ("0.60", "1.20")
    started = await job_row(pipeline.env["DATABASE_URL"], running.id)
    never_admitted = await job_row(pipeline.env["DATABASE_URL"], second_waiting.id)
    assert started["settled_at"] is not None and started["charged_micros"] == FAST_MICROS
    assert never_admitted["settled_at"] is not None and never_admitted["charged_micros"] == 0
    assert never_admitted["admitted_at"] is None and not job_exists(pipeline, second_waiting.id)

    await deleted(pipeline, kept, first_waiting)

    async def nothing_held() -> bool:
        spend = await usage(pipeline, user)
        return (spend["active"], spend["waiting"], spend["reserved_usd"]) == (0, 0, "0.00")

    await eventually(nothing_held, what="everything of the user's released", seconds=30)


async def test_generations_deleted_while_no_operator_watched_are_released_when_it_returns(
    pipeline: Pipeline,
) -> None:
    """No generation carries kopf's finalizer, so deleting one with no operator running removes
    it at once, unseen, whether an operator admitted it before or not: when an operator returns,
    its reaper finds their rows without a resource and releases them."""
    user = await pipeline.api.register("u")
    tag = f"unwatched-{uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(tag, polls_until_done=60)
    admitted = await submit(pipeline.api, user, f"{tag} admitted")
    await until_status(admitted, "RUNNING")
    assert FINALIZER not in resource(pipeline, admitted.id)["metadata"].get("finalizers", [])

    pipeline.operator.stop()
    unseen = await submit(pipeline.api, user, f"{tag} unseen")
    assert FINALIZER not in resource(pipeline, unseen.id)["metadata"].get("finalizers", [])
    await deleted(pipeline, admitted, unseen, wait=False)
    for generation in (admitted, unseen):
        assert not pipeline.kubectl("get", "vg", generation.id, "--ignore-not-found", "-o", "name")
    held = await usage(pipeline, user)
    assert (held["active"], held["reserved_usd"]) == (1, "1.20")

    pipeline.restart_operator()
    for generation in (admitted, unseen):
        await until_status(generation, "CANCELED", "ResourceDeleted")
    spend = await usage(pipeline, user)
    assert (spend["active"], spend["waiting"]) == (0, 0)
    assert (spend["spent_usd"], spend["reserved_usd"]) == ("0.60", "0.00")
    rows = [await job_row(pipeline.env["DATABASE_URL"], g.id) for g in (admitted, unseen)]
    assert [row["charged_micros"] for row in rows] == [FAST_MICROS, 0]
    assert all(row["settled_at"] is not None for row in rows)


ADMISSION_FAMILIES = (
    "genvid_budget_settled_usd",
    "genvid_budget_reserved_usd",
    "genvid_admission_active",
    "genvid_admission_waiting",
    "genvid_admission_wait_seconds",
)


def sample(metrics: dict[str, Any], name: str) -> float:
    """The value of an unlabelled sample (`name` as exposed: `_total`, `_count`, `_sum`)."""
    family = name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    [value] = [s.value for s in metrics[family].samples if s.name == name]
    return float(value)


async def test_the_operators_spend_and_admission_metrics_agree_with_the_ledger(
    pipeline: Pipeline,
) -> None:
    database = pipeline.env["DATABASE_URL"]
    before = await pipeline.operator_metrics()
    for name in ADMISSION_FAMILIES:
        assert before[name].documentation, f"{name} has no HELP"
        labels = {key for s in before[name].samples for key in s.labels}
        assert labels <= {"le"}, f"{name} is labelled {labels}"
    user = await pipeline.api.register("u")
    tag = f"metered-{uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(tag, polls_until_done=30)
    generations = await submit_many(pipeline, user, tag, USER_CAP + 1)

    async def gauges_show_the_ledger() -> bool:
        metrics = await pipeline.operator_metrics()
        reserved, _ = await ledger(database, "global")
        return (
            sample(metrics, "genvid_admission_active") == USER_CAP
            and sample(metrics, "genvid_admission_waiting") == 1
            and reserved == (USER_CAP + 1) * FAST_MICROS
            and sample(metrics, "genvid_budget_reserved_usd") == pytest.approx(reserved / 1e6)
        )

    await eventually(gauges_show_the_ledger, what="two running, one waiting", seconds=90)
    for generation in generations:
        assert (await generation.wait_final(seconds=240))["status"] == "SUCCEEDED"

    async def settled() -> dict[str, Any] | None:
        metrics = await pipeline.operator_metrics()
        idle = (
            sample(metrics, "genvid_admission_active"),
            sample(metrics, "genvid_admission_waiting"),
            sample(metrics, "genvid_budget_reserved_usd"),
        )
        return metrics if idle == (0, 0, 0) and (await ledger(database, "global"))[0] == 0 else None

    after = await eventually(settled, what="the gauges back to zero", seconds=60)
    rows = await fetch(
        database,
        "SELECT charged_micros, extract(epoch FROM admitted_at - created_at) AS waited "
        "FROM video_generation_jobs WHERE id = ANY($1::uuid[])",
        [uuid.UUID(g.id) for g in generations],
    )
    charged = sum(row["charged_micros"] for row in rows)
    assert charged == (USER_CAP + 1) * FAST_MICROS
    settled_usd = sample(after, "genvid_budget_settled_usd_total")
    assert settled_usd - sample(before, "genvid_budget_settled_usd_total") == pytest.approx(
        charged / 1e6
    )
    waits = [float(row["waited"]) for row in rows]
    count = "genvid_admission_wait_seconds_count"
    assert sample(after, count) - sample(before, count) == len(rows)
    total = "genvid_admission_wait_seconds_sum"
    assert sample(after, total) - sample(before, total) == pytest.approx(sum(waits), abs=1e-3)
    assert max(waits) > 1  # the third waited for one of the first two to finish
