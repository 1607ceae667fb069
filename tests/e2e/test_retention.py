"""Retention of finished VideoGenerations, end to end on the real stack: past a short retention
the operator deletes finished and synced resources, their rows and events stay and the api
keeps serving them from Postgres; unfinished or unsynced resources are never deleted; and the
operator's per-generation memory goes with the resources."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest

from genvid_contracts.resource import GROUP, KIND, VERSION
from genvid_devstack import apps
from genvid_devstack.state import State
from support.kube import kubectl, kubectl_json, scratch_namespace
from support.pipeline import Pipeline, PipelineSettings, job_row, statuses
from support.polling import eventually
from support.processes import free_port

pytestmark = pytest.mark.stack

RETENTION_SECONDS = 5


@pytest.fixture(scope="module")
def pipeline_settings() -> PipelineSettings:
    return PipelineSettings(
        env={
            "GENVID_FINISHED_RETENTION_SECONDS": str(RETENTION_SECONDS),
            "GENVID_RESYNC_SECONDS": "1",
            "GENVID_ADMISSION_INTERVAL_SECONDS": "0.5",
        }
    )


def resource_exists(kubeconfig: str, namespace: str, name: str) -> bool:
    found = kubectl(kubeconfig, "-n", namespace, "get", "vg", name, "--ignore-not-found", "-o=name")
    return bool(found.stdout.strip())


async def tracked(pipeline: Pipeline, state: State | None = None) -> dict[str, float]:
    """The operator's per-generation entries in memory, by structure."""
    family = (await pipeline.operator_metrics(state))["genvid_operator_tracked_generations"]
    return {sample.labels["structure"]: sample.value for sample in family.samples}


async def last_sweep(pipeline: Pipeline, state: State | None = None) -> float:
    family = (await pipeline.operator_metrics(state))[
        "genvid_retention_last_sweep_timestamp_seconds"
    ]
    return float(family.samples[0].value)


async def test_finished_generations_are_deleted_past_retention_and_still_served(
    pipeline: Pipeline,
) -> None:
    generation, _ = await pipeline.generate("a heron at dawn")
    # Published only once in Postgres: the row is final when its last event arrives.
    assert statuses(await generation.events()) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    final = await generation.get()
    row = dict(await job_row(pipeline.env["DATABASE_URL"], generation.id))
    kubeconfig, namespace = pipeline.env["KUBECONFIG"], pipeline.namespace

    await eventually(
        lambda: not resource_exists(kubeconfig, namespace, generation.id),
        what="the finished resource to be deleted",
        seconds=60,
        interval=0.25,
    )

    # The row is untouched: not CANCELED (ResourceDeleted), no new event.
    assert dict(await job_row(pipeline.env["DATABASE_URL"], generation.id)) == row
    body = await generation.get()
    for key in ("status", "reason", "finished_at", "cost_usd", "size_bytes", "attempts"):
        assert body[key] == final[key], key
    listed = await pipeline.api.http.get("/generations", headers=generation.user.auth)
    assert listed.status_code == 200, listed.text
    assert [item["status"] for item in listed.json()["items"] if item["id"] == generation.id] == [
        "SUCCEEDED"
    ]
    # Its events replay from the stream, ending where they ended.
    assert statuses(await generation.events()) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    video = await pipeline.api.http.get(body["video_url"])
    assert video.status_code == 200 and video.content, video.text
    assert await generation.cancel() == 409
    published = await pipeline.api.http.post(
        "/videos",
        json={"generation_id": generation.id, "title": "a heron", "description": ""},
        headers=generation.user.auth,
    )
    assert published.status_code == 201, published.text
    assert not resource_exists(kubeconfig, namespace, generation.id)  # nothing re-created it


async def test_per_generation_memory_goes_with_the_resources(pipeline: Pipeline) -> None:
    before = await tracked(pipeline)
    generations = [
        generation for generation, _ in [await pipeline.generate(f"tide {i}") for i in range(6)]
    ]

    async def held() -> bool:
        return (await tracked(pipeline))["locks"] > before["locks"]

    await eventually(held, what="the operator to track the new generations")
    for generation in generations:
        assert (await generation.wait_final())["status"] == "SUCCEEDED"

    kubeconfig, namespace = pipeline.env["KUBECONFIG"], pipeline.namespace

    def all_deleted() -> bool:
        return not any(resource_exists(kubeconfig, namespace, g.id) for g in generations)

    await eventually(all_deleted, what="the finished resources to be deleted", seconds=60)

    async def released() -> bool:
        return await tracked(pipeline) == before

    await eventually(released, what="per-generation entries back to their count before")


def _resource(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "prompt": "a lighthouse in fog",
            "model": "veo-3.0-fast-generate-001",
            "durationSeconds": 4,
            "aspectRatio": "16:9",
            "owner": "00000000-0000-4000-8000-000000000001",
            **spec,
        },
    }


def _status(phase: str, event_seq: int, synced_seq: int, ago: dt.timedelta) -> dict[str, Any]:
    at = (dt.datetime.now(dt.UTC) - ago).strftime("%Y-%m-%dT%H:%M:%SZ")
    status: dict[str, Any] = {
        "phase": phase,
        "eventSeq": event_seq,
        "syncedSeq": synced_seq,
        "queuedAt": at,
        "startedAt": at,
    }
    if phase != "RUNNING":
        status["finishedAt"] = at
    return status


async def test_unfinished_or_unsynced_resources_are_never_deleted(
    pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An operator that cannot publish (its NATS is unreachable) cannot sync a transition:
    resources long past retention stay while unsynced or unfinished; a synced one goes."""
    kubeconfig = pipeline.env["KUBECONFIG"]
    hour = dt.timedelta(hours=1)
    resources = {
        "synced": _status("SUCCEEDED", 3, 3, hour),
        "unsynced": _status("SUCCEEDED", 3, 2, hour),
        "failed-unsynced": _status("FAILED", 2, 1, hour),
        "running": _status("RUNNING", 2, 2, hour),
    }
    with scratch_namespace(kubeconfig, "retention") as namespace:
        # Written before any operator watches the namespace: what it finds is what it judges.
        for name, status in resources.items():
            document = json.dumps(_resource(name, namespace, cancel=name == "running"))
            kubectl(kubeconfig, "apply", "-f", "-", input=document)
            kubectl(
                kubeconfig, "-n", namespace, "patch", "vg", name, "--subresource=status",
                "--type=merge", "-p", json.dumps({"status": status}),
            )  # fmt: skip
        state = State(tmp_path_factory.mktemp("retention-operator"))
        state.prepare()
        env = {
            "KUBECONFIG": kubeconfig,
            "GENVID_NATS_URL": f"nats://127.0.0.1:{free_port()}",  # nothing listens
            "GENVID_DATABASE_URL": "",
            "GENVID_BUCKET": "",
            "GENVID_FINISHED_RETENTION_SECONDS": "1",
            "GENVID_RESYNC_SECONDS": "1",
        }
        operator = apps.start_operator(state, env, namespace)
        try:
            await eventually(
                lambda: not resource_exists(kubeconfig, namespace, "synced"),
                what="the synced resource past retention to be deleted",
                seconds=60,
                interval=0.25,
            )
            deleted_at = time.time()

            async def swept_since() -> bool:
                return await last_sweep(pipeline, state) > deleted_at + 1

            await eventually(swept_since, what="another full retention sweep")
            for name in ("unsynced", "failed-unsynced", "running"):
                # Still there; kubectl get fails the test if not.
                left = kubectl_json(kubeconfig, "-n", namespace, "get", "vg", name)
                if name != "running":  # the operator canceled that one, unsynced too
                    assert left["status"]["syncedSeq"] < left["status"]["eventSeq"], name
            assert (await tracked(pipeline, state))["finished"] == 0
        finally:
            operator.stop()
