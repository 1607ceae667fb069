"""An operator that starts over many finished generations does no work for them: it reads them
through kopf's LIST and WATCH and nothing more. No status patch, no finalizer, no GET of a
generation or of its Job, no LIST of its pods, none of them left to its resync, so a restart
costs the same with ten or with ten thousand finished generations in the namespace.

An operator upgraded from a version that put kopf's finalizer on unfinished generations (its
resync was a kopf timer) removes that finalizer, so deleting such a generation never hangs.

The apiserver counts what it serves (`apiserver_request_total` on its /metrics): the test
compares those counts before and after the restart. They are every client's, so the figures
asserted are per object (a GET of one generation or Job, any write to a generation), which no
other component of the stack makes in this namespace's absence of work.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

import pytest

from genvid_contracts.resource import GROUP, KIND, VERSION
from support.kube import ApiRequest, apiserver_requests, kubectl
from support.pipeline import Pipeline
from support.polling import eventually

pytestmark = pytest.mark.stack

FINISHED = 1000
LEGACY_FINALIZER = f"{GROUP}/operator"  # kopf's, as earlier versions left it
_WRITES = ("CREATE", "UPDATE", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION", "POST", "PUT")


def finished_generation(namespace: str, index: int) -> dict[str, Any]:
    """A generation as the api creates it."""
    name = str(uuid.uuid4())
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"prompt": f"a finished fox {index}", "owner": str(uuid.uuid4())},
    }


def finished_status(generation: dict[str, Any]) -> dict[str, Any]:
    """A final, synced status as the operator leaves it (its Job long gone)."""
    stamp = "2026-01-01T00:00:00Z"
    return {
        **generation,
        "status": {
            "phase": "SUCCEEDED",
            "reason": "Succeeded",
            "message": "The preview is ready.",
            "attempts": 1,
            "eventSeq": 3,
            "syncedSeq": 3,
            "jobName": f"genvid-{generation['metadata']['name']}",
            "queuedAt": stamp,
            "admittedAt": stamp,
            "startedAt": stamp,
            "finishedAt": stamp,
            "estimatedCostUSD": "0.60",
        },
    }


def apply_list(pipeline: Pipeline, items: list[dict[str, Any]], *args: str) -> None:
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    kubectl(pipeline.env["KUBECONFIG"], "-n", pipeline.namespace, *args, "-f", "-", input=document)


def per_object(counts: Counter[ApiRequest], resources: tuple[str, ...]) -> Counter[ApiRequest]:
    """Requests on one object of `resources` (scope "resource"), and every write to them."""
    return Counter(
        {
            key: count
            for key, count in counts.items()
            if key[1] in resources and (key[3] == "resource" or key[0] in _WRITES) and count
        }
    )


async def sample(pipeline: Pipeline, family: str, name: str, **labels: str) -> float:
    """One sample of the operator's metrics (0 when absent)."""
    samples = (await pipeline.operator_metrics())[family].samples
    return next((s.value for s in samples if s.name == name and s.labels == labels), 0.0)


async def settled_operator(pipeline: Pipeline, generations: int) -> None:
    """Until the restarted operator has had an event of every generation, and its admission
    loop passed twice since (a pass would have had its time to run)."""

    async def seen() -> bool:
        watch = ("genvid_watch_events", "genvid_watch_events_total")
        return await sample(pipeline, *watch, resource="generation") >= generations

    async def last_pass() -> float:
        name = "genvid_admission_last_pass_timestamp_seconds"
        return await sample(pipeline, name, name)

    await eventually(seen, what="an event of every generation", seconds=120, interval=0.5)
    for _ in range(2):
        previous = await last_pass()

        async def passed(previous: float = previous) -> bool:
            return await last_pass() > previous

        await eventually(passed, what="the admission loop to pass again", seconds=60)
    in_progress = "genvid_reconciles_in_progress"
    assert await sample(pipeline, in_progress, in_progress) == 0


async def test_a_restarted_operator_does_no_work_for_finished_generations(
    pipeline: Pipeline,
) -> None:
    pipeline.kill_operator()
    created = [finished_generation(pipeline.namespace, i) for i in range(FINISHED)]
    apply_list(pipeline, created, "create")
    apply_list(
        pipeline,
        [finished_status(generation) for generation in created],
        "apply",
        "--server-side",
        "--subresource=status",
        "--field-manager=genvid-test",
    )
    versions = resource_versions(pipeline)
    assert len(versions) == FINISHED

    before = apiserver_requests(pipeline.env["KUBECONFIG"])
    pipeline.restart_operator()
    await settled_operator(pipeline, FINISHED)
    after = apiserver_requests(pipeline.env["KUBECONFIG"])

    made = after.copy()
    made.subtract(before)
    assert per_object(made, ("videogenerations", "jobs")) == Counter()
    pod_lists = made[("LIST", "pods", "", "namespace")]
    assert pod_lists < 10, f"{pod_lists} LISTs of pods: one per generation?"
    assert resource_versions(pipeline) == versions  # not one of them was written
    assert await unsettled(pipeline) == 0  # nothing for the resync either


def resource_versions(pipeline: Pipeline) -> dict[str, str]:
    """Every finished generation's resourceVersion, by name."""
    items = pipeline.get("vg")["items"]
    assert all(item["status"]["phase"] == "SUCCEEDED" for item in items)
    return {item["metadata"]["name"]: item["metadata"]["resourceVersion"] for item in items}


async def unsettled(pipeline: Pipeline) -> float:
    """The generations the operator's resync passes over."""
    family = "genvid_operator_tracked_generations"
    return await sample(pipeline, family, family, structure="unsettled")


def finalizers(pipeline: Pipeline, name: str) -> list[str]:
    found: list[str] = pipeline.get("vg", name)["metadata"].get("finalizers", [])
    return found


def exists(pipeline: Pipeline, name: str) -> bool:
    return bool(pipeline.kubectl("get", "vg", name, "--ignore-not-found", "-o", "name").strip())


async def test_an_upgraded_operator_removes_the_finalizer_an_earlier_version_left(
    pipeline: Pipeline,
) -> None:
    """Two unfinished generations carry the earlier version's finalizer: one is deleted while no
    operator runs (it stays Terminating), the other is deleted once the new operator saw it. Both
    go, and both end CANCELED for their users."""
    pipeline.kill_operator()
    kept, _ = await pipeline.generate("an upgraded fox", polls_until_done=600)
    terminating, _ = await pipeline.generate("a terminating fox", polls_until_done=600)
    legacy = json.dumps({"metadata": {"finalizers": [LEGACY_FINALIZER]}})
    for generation in (kept, terminating):
        pipeline.kubectl("patch", "vg", generation.id, "--type=merge", "-p", legacy)
    pipeline.kubectl("delete", "vg", terminating.id, "--wait=false")
    assert pipeline.get("vg", terminating.id)["metadata"]["deletionTimestamp"]

    pipeline.restart_operator()
    await eventually(
        lambda: LEGACY_FINALIZER not in finalizers(pipeline, kept.id),
        what="the earlier version's finalizer to be removed",
        seconds=60,
    )
    await eventually(
        lambda: not exists(pipeline, terminating.id),
        what="the generation deleted meanwhile to go",
        seconds=60,
    )
    await asyncio.to_thread(pipeline.kubectl, "delete", "vg", kept.id, "--timeout=60s")
    assert not exists(pipeline, kept.id)
    for generation in (kept, terminating):
        final = await generation.wait_final()
        assert (final["status"], final["reason"]) == ("CANCELED", "ResourceDeleted")
    assert await unsettled(pipeline) == 0
