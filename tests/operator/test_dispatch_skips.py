"""Which watch events cost a reconcile pass: the operator's bookkeeping of the versions its
passes read and wrote (`Context.current`, `Context.settled_here`), without a cluster."""

from __future__ import annotations

from typing import Any, cast

from genvid_contracts.resource import VideoGeneration
from genvid_operator.reconcile import Context
from support.operator import operator_context

NAMESPACE, NAME = "genvid", "6f1c2a4e-0000-4000-8000-000000000001"


def context(jobs: dict[str, list[dict[str, Any]]] | None = None) -> Context:
    return operator_context(jobs=jobs)


def body(version: str, phase: str | None = None, seq: int = 0, synced: int = 0) -> VideoGeneration:
    status = {"phase": phase, "eventSeq": seq, "syncedSeq": synced} if phase else {}
    return cast(
        VideoGeneration,
        {
            "metadata": {"namespace": NAMESPACE, "name": NAME, "resourceVersion": version},
            "spec": {"prompt": "a fox", "owner": "u"},
            "status": status,
        },
    )


def test_the_event_of_a_passs_own_patch_costs_no_pass_once_the_pass_is_done() -> None:
    ctx = context()
    ctx.seen(body("1"))  # the pass started from the creation event
    ctx.seen(body("2", "QUEUED", 1))  # its transition
    ctx.seen(body("3", "QUEUED", 1, 1))  # synced
    assert not ctx.settled_here(NAMESPACE, NAME, body("2", "QUEUED", 1))  # still running
    ctx.known[(NAMESPACE, NAME)].done = True
    assert ctx.settled_here(NAMESPACE, NAME, body("2", "QUEUED", 1))
    assert ctx.settled_here(NAMESPACE, NAME, body("3", "QUEUED", 1, 1))
    # Another writer's version (a cancel, kopf's finalizer) is news: it gets a pass.
    assert not ctx.settled_here(NAMESPACE, NAME, body("4", "QUEUED", 1, 1))


def test_a_pass_starts_from_the_newest_body_it_has() -> None:
    ctx = context()
    assert ctx.current(NAMESPACE, NAME, None) is None  # nothing known: read it
    ctx.seen(body("1"))
    ctx.seen(body("3", "QUEUED", 1, 1))
    older = ctx.current(NAMESPACE, NAME, body("1"))
    assert older is not None and older["metadata"]["resourceVersion"] == "3"
    kicked = ctx.current(NAMESPACE, NAME, None)
    assert kicked is not None and kicked["metadata"]["resourceVersion"] == "3"
    newer = ctx.current(NAMESPACE, NAME, body("5", "QUEUED", 1, 1))
    assert newer is not None and newer["metadata"]["resourceVersion"] == "5"


def test_a_settled_generation_costs_no_pass_unless_its_job_is_still_there() -> None:
    finished = body("9", "SUCCEEDED", 3, 3)
    assert context().settled_here(NAMESPACE, NAME, finished)
    assert not context({NAME: [{"metadata": {"name": "job"}}]}).settled_here(
        NAMESPACE, NAME, finished
    )
    unsynced = body("9", "SUCCEEDED", 3, 2)
    assert not context().settled_here(NAMESPACE, NAME, unsynced)


def test_forgetting_a_generation_drops_its_versions_and_lock() -> None:
    ctx = context()
    ctx.seen(body("1"))
    ctx.locks[(NAMESPACE, NAME)]
    ctx.forget(NAMESPACE, NAME)
    assert not ctx.known and not ctx.locks
