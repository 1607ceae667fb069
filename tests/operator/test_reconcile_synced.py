"""What a generation's passes write to the apiserver and hand to Postgres and NATS, without a
cluster: a non-final transition costs one status patch (its syncedSeq rides on the next one),
a final one two, and a transition left unsynced on the resource is synced again by the next
pass, whichever process runs it.

The apiserver here holds one VideoGeneration and refuses a status patch decided from an older
resourceVersion, as the real one does; the sinks record what they were given. That the sinks
themselves ignore a transition given twice is the end-to-end tests' part."""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest

from genvid_contracts.events import TransitionEvent
from genvid_contracts.resource import VideoGeneration, VideoGenerationStatus
from genvid_contracts.worker import DEFAULT_MODEL
from genvid_operator.cluster import Conflict
from genvid_operator.jobspec import job_name
from genvid_operator.publish import NatsUnavailable
from genvid_operator.reconcile import Context, reconcile, settled, with_synced
from support.operator import operator_context

NAMESPACE, NAME = "genvid", "6f1c2a4e-0000-4000-8000-000000000002"
Json = dict[str, Any]


class Apiserver:
    """One VideoGeneration behind the few calls a pass makes; its status patches in order."""

    def __init__(self) -> None:
        self.vg: Json = {
            "apiVersion": "genvid.io/v1alpha1",
            "kind": "VideoGeneration",
            "metadata": {
                "namespace": NAMESPACE,
                "name": NAME,
                "uid": "uid-1",
                "generation": 1,
                "resourceVersion": "1",
            },
            "spec": {
                "prompt": "a fox",
                "model": DEFAULT_MODEL,
                "durationSeconds": 4,
                "aspectRatio": "16:9",
                "owner": "00000000-0000-4000-8000-000000000001",
            },
        }
        self.patches: list[VideoGenerationStatus] = []
        self.pods: list[Json] = []

    def bump(self) -> None:
        """Another writer changed the object (kopf's finalizer, a label)."""
        meta = self.vg["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    @property
    def status(self) -> Json:
        return cast(Json, self.vg.get("status") or {})

    async def get_generation(self, namespace: str, name: str) -> VideoGeneration:
        return cast(VideoGeneration, copy.deepcopy(self.vg))

    async def patch_status(
        self, vg: VideoGeneration, new: VideoGenerationStatus
    ) -> VideoGeneration:
        if vg["metadata"]["resourceVersion"] != self.vg["metadata"]["resourceVersion"]:
            raise Conflict(NAME)
        self.patches.append(copy.deepcopy(new))
        self.bump()
        self.vg["status"] = copy.deepcopy(dict(new))
        return await self.get_generation(NAMESPACE, NAME)

    async def create_job(self, body: Json) -> bool:
        return True

    async def get_job(self, namespace: str, generation: str) -> Json | None:
        return None

    async def list_pods(self, namespace: str, generation: str) -> list[Json]:
        return self.pods

    async def set_job_ttl(self, namespace: str, generation: str, seconds: int) -> None:
        pass


class Sinks:
    """Postgres and NATS as a pass sees them: the seq of every transition handed to each."""

    def __init__(self) -> None:
        self.mirrored: list[int] = []
        self.published: list[int] = []
        self.read_back: list[int] = []  # published after reading the subject's last message
        self.nats_up = True

    async def write(self, event: TransitionEvent) -> bool:
        self.mirrored.append(event["seq"])
        return True

    async def publish_once(self, event: TransitionEvent, *, fresh: bool = False) -> bool:
        if not self.nats_up:
            raise NatsUnavailable("down")
        self.published.append(event["seq"])
        if not fresh:
            self.read_back.append(event["seq"])
        return True


def operator(apiserver: Apiserver, sinks: Sinks) -> Context:
    """A fresh operator process: nothing in memory."""
    return operator_context(cluster=apiserver, events=sinks, mirror=sinks)


def job(**status: Any) -> Json:
    return {"metadata": {"name": job_name(NAME)}, "status": status}


def pod(phase: str, state: Json) -> Json:
    container = {"name": "worker", "state": state}
    return {"metadata": {"name": "p"}, "status": {"phase": phase, "containerStatuses": [container]}}


def worker_running(ctx: Context) -> None:
    """The indexes hold the Job and its running pod."""
    ctx.jobs = {NAME: [job(active=1)]}
    ctx.pods = {NAME: [pod("Running", {"running": {"startedAt": "2026-11-24T07:58:01Z"}})]}


def worker_done(ctx: Context, apiserver: Apiserver) -> None:
    """The Job is complete and its pod succeeded (read from the apiserver: the index may lag)."""
    ctx.jobs = {NAME: [job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}])]}
    message = '{"status": "succeeded", "bucket": "b", "object": "previews/x.mp4"}'
    apiserver.pods = [pod("Succeeded", {"terminated": {"exitCode": 0, "message": message}})]
    ctx.pods = {NAME: apiserver.pods}


def seqs(patches: list[VideoGenerationStatus]) -> list[tuple[str | None, int, int]]:
    return [
        (p.get("phase"), int(p.get("eventSeq") or 0), int(p.get("syncedSeq") or 0)) for p in patches
    ]


async def running() -> tuple[Apiserver, Sinks, Context]:
    """A generation taken by one operator through QUEUED to RUNNING."""
    apiserver, sinks = Apiserver(), Sinks()
    ctx = operator(apiserver, sinks)
    await reconcile(ctx, NAMESPACE, NAME)
    worker_running(ctx)
    await reconcile(ctx, NAMESPACE, NAME)
    return apiserver, sinks, ctx


async def test_a_non_final_transition_costs_one_patch_and_the_final_one_two() -> None:
    apiserver, sinks, ctx = await running()
    # While it runs, the resource says one behind what Postgres and NATS have.
    assert (apiserver.status["eventSeq"], apiserver.status["syncedSeq"]) == (2, 1)
    worker_done(ctx, apiserver)
    await reconcile(ctx, NAMESPACE, NAME)

    assert seqs(apiserver.patches) == [
        ("QUEUED", 1, 0),
        ("RUNNING", 2, 1),
        ("SUCCEEDED", 3, 2),
        ("SUCCEEDED", 3, 3),  # the final transition's own syncedSeq patch
    ]
    assert sinks.mirrored == sinks.published == [1, 2, 3]
    assert settled(cast(VideoGeneration, apiserver.vg))


async def test_a_pass_with_nothing_new_writes_nothing_even_while_syncedseq_lags() -> None:
    apiserver, sinks, ctx = await running()
    patches = len(apiserver.patches)
    await reconcile(ctx, NAMESPACE, NAME)  # a resync, a pod event
    await reconcile(ctx, NAMESPACE, NAME, await apiserver.get_generation(NAMESPACE, NAME))
    assert len(apiserver.patches) == patches
    assert sinks.published == [1, 2]


async def test_a_restarted_operator_syncs_the_unsynced_transition_again_then_moves_on() -> None:
    apiserver, sinks, _ = await running()
    second = operator(apiserver, sinks)  # the first was killed: its memory is gone
    worker_running(second)
    await reconcile(second, NAMESPACE, NAME)
    assert sinks.published == [1, 2, 2]  # handed again; NATS keeps one (publish_once)
    # Only a transition a pass did not just write itself may have been published before.
    assert sinks.read_back == [2]
    assert sinks.mirrored == [1, 2, 2]  # Postgres too (event_seq only grows)
    assert len(apiserver.patches) == 2  # nothing new to write
    worker_done(second, apiserver)
    await reconcile(second, NAMESPACE, NAME)

    assert seqs(apiserver.patches)[2:] == [("SUCCEEDED", 3, 2), ("SUCCEEDED", 3, 3)]
    assert sinks.published == [1, 2, 2, 3]
    assert sinks.read_back == [2]


async def test_no_transition_is_decided_while_the_current_one_cannot_be_published() -> None:
    apiserver, sinks = Apiserver(), Sinks()
    ctx = operator(apiserver, sinks)
    sinks.nats_up = False
    with pytest.raises(NatsUnavailable):
        await reconcile(ctx, NAMESPACE, NAME)
    worker_running(ctx)
    with pytest.raises(NatsUnavailable):
        await reconcile(ctx, NAMESPACE, NAME)
    assert seqs(apiserver.patches) == [("QUEUED", 1, 0)]

    sinks.nats_up = True
    await reconcile(ctx, NAMESPACE, NAME)
    assert seqs(apiserver.patches) == [("QUEUED", 1, 0), ("RUNNING", 2, 1)]
    assert sinks.published == [1, 2]
    assert sinks.mirrored == [1, 1, 1, 2]  # written again by each pass until published
    assert sinks.read_back == [1]  # its first attempt may have reached NATS after all


async def test_what_a_pass_synced_survives_a_conflict_and_rides_on_the_patch_after_it() -> None:
    apiserver, sinks = Apiserver(), Sinks()
    ctx = operator(apiserver, sinks)
    await reconcile(ctx, NAMESPACE, NAME)
    apiserver.bump()  # the pass's body is now older than the object
    worker_running(ctx)
    await reconcile(ctx, NAMESPACE, NAME)
    assert seqs(apiserver.patches) == [("QUEUED", 1, 0), ("RUNNING", 2, 1)]
    assert sinks.published == [1, 2]


@pytest.mark.parametrize(
    ("old", "new", "synced", "expected"),
    [
        ({"eventSeq": 2, "syncedSeq": 1}, {"eventSeq": 3, "syncedSeq": 1}, 2, 2),
        # A transition newer than the body's is not the body's to record.
        ({"eventSeq": 2, "syncedSeq": 1}, {"eventSeq": 3, "syncedSeq": 1}, 5, 2),
        # Never lowered: the resource already records more than this process synced.
        ({"eventSeq": 4, "syncedSeq": 4}, {"eventSeq": 5, "syncedSeq": 4}, 0, 4),
        ({}, {"eventSeq": 1}, 0, 0),
    ],
)
def test_syncedseq_rides_on_a_patch_up_to_the_bodys_own_transition(
    old: Json, new: Json, synced: int, expected: int
) -> None:
    status = with_synced(cast(VideoGenerationStatus, old), cast(VideoGenerationStatus, new), synced)
    assert int(status.get("syncedSeq") or 0) == expected
    assert status["eventSeq"] == new["eventSeq"]
