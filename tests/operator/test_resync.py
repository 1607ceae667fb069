"""The resync without a cluster: which generations it keeps passing over, that a sweep runs a
few passes at a time and survives a failing one, how a resync pass leaves the set, and that no
handler the operator registers makes kopf put its finalizer on a VideoGeneration."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf
import pytest

from genvid_contracts.resource import VideoGeneration
from genvid_contracts.tasks import stop
from genvid_operator import handlers
from genvid_operator.cluster import Cluster
from genvid_operator.config import Settings
from genvid_operator.reconcile import Context
from genvid_operator.resync import Unsettled, sweep, unsettled
from support.operator import operator_context

NAME = "6f1c2a4e-0000-4000-8000-000000000002"
RELEASED = Settings().ttl_seconds_after_finished


def body(phase: str | None = None, seq: int = 0, synced: int = 0) -> VideoGeneration:
    status = {"phase": phase, "eventSeq": seq, "syncedSeq": synced} if phase else {}
    return cast(
        VideoGeneration,
        {
            "metadata": {"namespace": "genvid", "name": NAME, "resourceVersion": "7"},
            "spec": {"prompt": "a fox", "owner": "u"},
            "status": status,
        },
    )


def job(ttl: int) -> dict[str, Any]:
    return {"metadata": {"name": f"genvid-{NAME}"}, "spec": {"ttlSecondsAfterFinished": ttl}}


@pytest.mark.parametrize(
    ("vg", "its_job", "expected"),
    [
        (body(), None, True),  # new: its first pass is to come
        (body("QUEUED", 1, 1), None, True),
        (body("RUNNING", 2, 2), job(604800), True),
        (body("SUCCEEDED", 3, 2), job(604800), True),  # final, not synced yet
        (body("FAILED", 3, 2), None, True),
        (body("SUCCEEDED", 3, 3), job(604800), True),  # its Job not released yet
        (body("SUCCEEDED", 3, 3), job(RELEASED), False),
        (body("REJECTED", 1, 1), None, False),
        (body("CANCELED", 2, 2), None, False),
    ],
)
def test_a_generation_is_unsettled_while_a_pass_may_still_act_on_it(
    vg: VideoGeneration, its_job: dict[str, Any] | None, expected: bool
) -> None:
    assert unsettled(vg, its_job, RELEASED) is expected


def test_the_set_follows_what_each_event_says() -> None:
    names = Unsettled()
    names.observe("a", keep=True)
    names.observe("b", keep=True)
    names.observe("a", keep=False)
    names.observe("c", keep=False)
    assert names == {"b"}


async def test_a_sweep_runs_each_name_once_a_few_at_a_time_past_a_failing_pass() -> None:
    names = Unsettled(f"g{i:03}" for i in range(40))
    ran: list[str] = []
    running, most = 0, 0

    async def run(name: str) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001)
        running -= 1
        ran.append(name)
        names.discard(name)  # the set changes while the sweep goes on
        if name == "g007":
            raise RuntimeError("apiserver unavailable")

    await sweep(names, run, concurrency=3)
    assert sorted(ran) == [f"g{i:03}" for i in range(40)]
    assert most == 3


def context(cluster: Cluster | None = None, jobs: dict[str, list[Any]] | None = None) -> Context:
    return operator_context(cluster=cluster, jobs=jobs)


class Unreachable:
    """An apiserver that answers no read: a pass that needs one raises."""

    def __init__(self) -> None:
        self.reads = 0

    async def get_generation(self, namespace: str, name: str) -> None:
        self.reads += 1
        raise ConnectionError("apiserver unreachable")


class Gone:
    """An apiserver where the generation no longer exists."""

    async def get_generation(self, namespace: str, name: str) -> None:
        return None


async def test_a_resync_pass_that_raises_leaves_the_generation_in_the_set() -> None:
    cluster = Unreachable()
    memo = kopf.Memo(ctx=context(cast(Cluster, cluster)), unsettled=Unsettled({NAME}))
    with pytest.raises(ConnectionError):
        await handlers.resync_pass(memo, NAME)
    assert cluster.reads == 1
    assert memo.unsettled == {NAME}


async def test_a_generation_gone_leaves_the_set_at_its_resync_pass() -> None:
    memo = kopf.Memo(ctx=context(cast(Cluster, Gone())), unsettled=Unsettled({NAME}))
    await handlers.resync_pass(memo, NAME)
    assert memo.unsettled == set()


async def test_a_generation_seen_settled_with_its_job_released_leaves_without_a_pass() -> None:
    # No cluster at all: any request would fail.
    ctx = context(jobs={NAME: [job(RELEASED)]})
    ctx.seen(body("SUCCEEDED", 3, 3))
    memo = kopf.Memo(ctx=ctx, unsettled=Unsettled({NAME}))
    await handlers.resync_pass(memo, NAME)
    assert memo.unsettled == set()


def test_no_handler_of_the_operator_needs_kopfs_finalizer() -> None:
    """kopf puts its finalizer on an object only for its spawning handlers (timers, daemons)
    and its changing ones (on.create, on.update, on.delete, ...): the operator registers only
    event handlers and indexes, so kopf puts none (and removes an earlier version's)."""
    registry = kopf.OperatorRegistry()
    handlers.register(registry, Settings())
    assert registry._spawning.get_all_handlers() == []
    assert registry._changing.get_all_handlers() == []
    assert registry._watching.get_all_handlers()  # the events still reach the operator


async def test_stopping_a_task_waits_for_it_and_ignores_one_never_started() -> None:
    ended = asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.set()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await stop(task)
    assert task.cancelled() and ended.is_set()
    await stop(None)
