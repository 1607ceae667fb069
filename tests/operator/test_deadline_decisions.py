"""Deadlines without a cluster: `decide` ends what is unfinished at `spec.deadline`, whatever its
phase, and the Job's `activeDeadlineSeconds` never runs past it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from genvid_operator.config import Settings
from genvid_operator.jobspec import active_deadline_seconds, build_job, stops_at_deadline
from genvid_operator.phases import Admission, Decision, Limits, decide
from support.operator import video_generation

NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
DEADLINE = "2026-11-24T08:00:00Z"  # NOW: the deadline has just passed
LIMITS = Limits(
    Decimal("0.15"), max_cost_usd=Decimal(4), max_retries=3, active_deadline_seconds=900
)
Json = dict[str, Any]

QUEUED_WAITING = {
    "phase": "QUEUED",
    "reason": "WaitingForCapacity",
    "queuePosition": 2,
    "eventSeq": 1,
    "attempts": 0,
}
QUEUED_ADMITTED = {
    "phase": "QUEUED",
    "reason": "Accepted",
    "admittedAt": "2026-11-24T07:50:00Z",
    "eventSeq": 1,
    "attempts": 0,
}
RUNNING = {**QUEUED_ADMITTED, "phase": "RUNNING", "reason": "Generating", "attempts": 1}
LOST = {**RUNNING, "reason": "WorkerLost", "nextAttemptAt": "2026-11-24T07:59:00Z"}


def generation(status: Json | None = None, deadline: str | None = DEADLINE, **spec: Any) -> Any:
    """A VideoGeneration due at `deadline` (None: without a deadline)."""
    return video_generation(status, **({"deadline": deadline} if deadline else {}), **spec)


def job(*, spec: Json | None = None, **status: Any) -> Json:
    return {"metadata": {"name": "genvid-g1"}, "spec": spec or {}, "status": status}


ACTIVE_JOB = job(active=1, startTime="2026-11-24T07:50:00Z")
RUNNING_POD = {
    "status": {
        "phase": "Running",
        "startTime": "2026-11-24T07:50:01Z",
        "containerStatuses": [{"name": "worker", "state": {"running": {}}}],
    }
}


@pytest.mark.parametrize(
    ("status", "children", "admission"),
    [
        pytest.param(None, None, Admission(admitted=True), id="new"),
        pytest.param(QUEUED_WAITING, None, Admission(admitted=False, position=2), id="waiting"),
        pytest.param(QUEUED_WAITING, None, Admission(admitted=True), id="admitted-now"),
        pytest.param(QUEUED_ADMITTED, None, Admission(admitted=True), id="admitted-no-job"),
        pytest.param(QUEUED_ADMITTED, (ACTIVE_JOB, []), Admission(admitted=True), id="job-pending"),
        pytest.param(RUNNING, (ACTIVE_JOB, [RUNNING_POD]), Admission(admitted=True), id="running"),
        pytest.param(LOST, None, Admission(admitted=True), id="lost-retry-due"),
    ],
)
def test_past_its_deadline_an_unfinished_generation_is_canceled_in_any_phase(
    status: Json | None, children: tuple[Json, list[Json]] | None, admission: Admission
) -> None:
    job_now, pods = children or (None, [])
    decision = decide(generation(status), job_now, pods, LIMITS, NOW, admission)
    assert not decision.create_job  # no Job is created, admitted or not
    assert decision.delete_job is (job_now is not None)  # a running worker is stopped
    assert decision.status is not None
    assert (decision.status["phase"], decision.status["reason"]) == (
        "CANCELED", "DeadlineExceeded",
    )  # fmt: skip
    assert decision.status["message"] == f"Canceled: not finished by its deadline, {DEADLINE}."
    assert decision.status["finishedAt"] == DEADLINE
    assert decision.status["eventSeq"] == int((status or {}).get("eventSeq", 0)) + 1
    finished = next(c for c in decision.status["conditions"] if c["type"] == "Finished")
    assert (finished["status"], finished["reason"]) == ("True", "DeadlineExceeded")


@pytest.mark.parametrize(
    ("status", "children", "expected"),
    [
        pytest.param(None, None, ("QUEUED", "Accepted"), id="new"),
        pytest.param(
            QUEUED_ADMITTED, (ACTIVE_JOB, [RUNNING_POD]), ("RUNNING", "Generating"), id="starts"
        ),
    ],
)
def test_before_its_deadline_nothing_changes(
    status: Json | None, children: tuple[Json, list[Json]] | None, expected: tuple[str, str]
) -> None:
    job_now, pods = children or (None, [])
    before = NOW - dt.timedelta(seconds=1)
    with_deadline = decide(generation(status), job_now, pods, LIMITS, before)
    without = decide(generation(status, deadline=None), job_now, pods, LIMITS, before)
    assert with_deadline == without
    assert with_deadline.status is not None
    assert (with_deadline.status["phase"], with_deadline.status["reason"]) == expected


def test_a_deadline_written_without_its_zone_is_utc() -> None:
    naive = DEADLINE.removesuffix("Z")
    before = decide(generation(deadline=naive), None, [], LIMITS, NOW - dt.timedelta(seconds=1))
    assert before.status is not None and before.status["phase"] == "QUEUED"
    past = decide(generation(deadline=naive), None, [], LIMITS, NOW)
    assert past.status is not None
    assert (past.status["phase"], past.status["reason"]) == ("CANCELED", "DeadlineExceeded")


def test_a_users_cancel_is_a_cancel_even_past_the_deadline() -> None:
    vg = generation(RUNNING, cancel=True)
    status = decide(vg, ACTIVE_JOB, [RUNNING_POD], LIMITS, NOW).status
    assert status is not None
    assert (status["phase"], status["reason"]) == ("CANCELED", "CanceledByUser")


def test_a_finished_generation_is_left_as_it_is_past_its_deadline() -> None:
    done = {**RUNNING, "phase": "SUCCEEDED", "reason": "Generated", "eventSeq": 3}
    assert decide(generation(done), None, [], LIMITS, NOW) == Decision()


def test_a_job_that_completed_before_the_pass_saw_it_succeeds_past_the_deadline() -> None:
    message = '{"status": "succeeded", "object": "previews/g1/p.mp4", "cost_usd": "0.60"}'
    done_pod = {
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "worker",
                    "state": {"terminated": {"exitCode": 0, "message": message}},
                }
            ],
        }
    }
    complete = job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    later = NOW + dt.timedelta(seconds=30)
    status = decide(generation(RUNNING), complete, [done_pod], LIMITS, later).status
    assert status is not None
    assert (status["phase"], status["estimatedCostUSD"]) == ("SUCCEEDED", "0.6")


def stopped_job(vg: Any, created: str) -> Json:
    """The Job `build_job` makes for `vg` at `created`, failed at its activeDeadlineSeconds."""
    manifest = build_job(vg, Settings(active_deadline_seconds=900), Decimal("0.15"), parse(created))
    return {
        **manifest,
        "status": {
            "startTime": created,
            "failed": 1,
            "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}],
        },
    }


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


LATER = "2026-11-24T09:00:00Z"


@pytest.mark.parametrize(
    ("deadline", "created", "seen_at", "expected"),
    [
        # Kubernetes stopped it at the deadline; the pass comes then, or a second "before" on an
        # operator whose clock is behind the Job controller's.
        pytest.param(DEADLINE, "2026-11-24T07:50:00Z", DEADLINE, "CANCELED", id="at"),
        pytest.param(
            DEADLINE, "2026-11-24T07:50:00Z", "2026-11-24T07:59:59Z", "CANCELED", id="skew"
        ),
        # The operator's runtime limit ran out before the generation's deadline: seen at once,
        # or only after the deadline (an operator that was down), it is the runtime limit.
        pytest.param(LATER, "2026-11-24T07:45:00Z", DEADLINE, "FAILED", id="runtime-limit"),
        pytest.param(
            LATER, "2026-11-24T07:45:00Z", "2026-11-24T09:30:00Z", "FAILED", id="seen-late"
        ),
        # No deadline: the runtime limit, as always.
        pytest.param(None, "2026-11-24T07:45:00Z", DEADLINE, "FAILED", id="none"),
    ],
)
def test_a_job_stopped_by_kubernetes_is_canceled_only_if_the_deadline_stopped_it(
    deadline: str | None, created: str, seen_at: str, expected: str
) -> None:
    vg = generation(RUNNING, deadline=deadline)
    status = decide(vg, stopped_job(vg, created), [], LIMITS, parse(seen_at)).status
    assert status is not None
    assert (status["phase"], status["reason"]) == (expected, "DeadlineExceeded")
    if expected == "FAILED":
        assert status["message"] == "The generation did not finish within 900 seconds."
    else:
        assert status["message"] == f"Canceled: not finished by its deadline, {DEADLINE}."


@pytest.mark.parametrize(
    ("deadline", "expected", "at_deadline"),
    [
        pytest.param(None, 900, False, id="no-deadline"),
        pytest.param("2026-11-24T10:00:00Z", 900, False, id="limit-first"),
        pytest.param("2026-11-24T08:15:00Z", 900, True, id="both-at-once"),
        pytest.param("2026-11-24T08:10:00Z", 600, True, id="deadline-first"),
        pytest.param("2026-11-24T08:00:01Z", 1, True, id="one-second-left"),
        pytest.param("2026-11-24T07:59:00Z", 1, True, id="passed"),
    ],
)
def test_the_jobs_active_deadline_is_the_runtime_limit_or_the_time_left(
    deadline: str | None, expected: int, at_deadline: bool
) -> None:
    vg = generation(QUEUED_ADMITTED, deadline=deadline)
    manifest = build_job(vg, Settings(active_deadline_seconds=900), Decimal("0.15"), NOW)
    assert manifest["spec"]["activeDeadlineSeconds"] == expected
    assert stops_at_deadline(manifest) is at_deadline


def test_the_time_left_is_rounded_up_so_the_job_never_stops_before_the_deadline() -> None:
    spec = generation(deadline="2026-11-24T08:10:00Z")["spec"]
    almost = NOW + dt.timedelta(seconds=0.25)
    assert active_deadline_seconds(spec, 900, almost) == (600, True)  # 599.75 s left
    assert active_deadline_seconds(spec, 900, NOW + dt.timedelta(seconds=1)) == (599, True)
