"""The transition table, without a cluster: which Job and pod states give which phase."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from genvid_contracts.worker import EXIT_PERMANENT
from genvid_devstack.kubelet.envvars import expand
from genvid_operator.config import Settings
from genvid_operator.jobspec import build_job, job_name
from genvid_operator.phases import Decision, Limits, decide, with_transition
from genvid_worker.cli import build_parser
from support.operator import video_generation as generation

NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
LIMITS = Limits(
    price_usd_per_second=Decimal("0.15"),
    max_cost_usd=Decimal("4"),
    max_retries=3,
    active_deadline_seconds=900,
)
Json = dict[str, Any]


def job(**status: Any) -> Json:
    return {"metadata": {"name": job_name("g1")}, "status": status}


def pod(phase: str, state: Json, finished: str = "2026-11-24T07:59:00Z") -> Json:
    if "terminated" in state:
        state["terminated"].setdefault("finishedAt", finished)
    return {
        "status": {
            "phase": phase,
            "startTime": "2026-11-24T07:58:00Z",
            "containerStatuses": [{"name": "worker", "state": state}],
        }
    }


def result_message(**fields: Any) -> str:
    return json.dumps(fields)


def test_new_generation_is_queued_with_a_cost_estimate_and_a_job() -> None:
    decision = decide(generation(), None, [], LIMITS, NOW)
    assert decision.create_job
    assert decision.status is not None
    assert decision.status["phase"] == "QUEUED"
    assert decision.status["estimatedCostUSD"] == "0.6"
    assert decision.status["eventSeq"] == 1
    assert decision.status["jobName"] == "genvid-g1"
    accepted = next(c for c in decision.status["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "True"


def test_unknown_model_is_rejected_without_a_job() -> None:
    limits = Limits(None, Decimal("4"), 3, 900)
    decision = decide(generation(model="veo-9"), None, [], limits, NOW)
    assert not decision.create_job
    assert decision.status is not None
    assert (decision.status["phase"], decision.status["reason"]) == ("REJECTED", "UnknownModel")


def test_generation_over_the_cost_limit_is_rejected() -> None:
    limits = Limits(Decimal("1.5"), Decimal("4"), 3, 900)
    decision = decide(generation(), None, [], limits, NOW)
    assert decision.status is not None
    assert decision.status["reason"] == "CostLimitExceeded"
    assert "$6" in decision.status["message"]


def queued() -> Json:
    status = decide(generation(), None, [], LIMITS, NOW).status
    assert status is not None
    return status


def test_queued_without_its_job_recreates_it_without_a_transition() -> None:
    decision = decide(generation(queued()), None, [], LIMITS, NOW)
    assert decision.create_job and decision.status is None


def test_running_pod_makes_it_running() -> None:
    running = pod("Running", {"running": {"startedAt": "2026-11-24T07:58:01Z"}})
    decision = decide(generation(queued()), job(active=1), [running], LIMITS, NOW)
    assert decision.status is not None
    assert decision.status["phase"] == "RUNNING"
    assert decision.status["attempts"] == 1
    assert decision.status["eventSeq"] == 2


def test_a_worker_that_finished_unseen_still_passes_through_running() -> None:
    done = pod("Succeeded", {"terminated": {"exitCode": 0, "message": "{}"}})
    complete = job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    decision = decide(generation(queued()), complete, [done], LIMITS, NOW)
    assert decision.status is not None
    assert decision.status["phase"] == "RUNNING"


def running_status() -> Json:
    running = pod("Running", {"running": {}})
    status = decide(generation(queued()), job(active=1), [running], LIMITS, NOW).status
    assert status is not None
    return status


def test_complete_job_succeeds_with_the_workers_output() -> None:
    message = result_message(
        status="succeeded",
        bucket="b",
        object="previews/g1/preview_1.mp4",
        poster_object="previews/g1/poster_1.jpg",
        size_bytes=1234,
        duration_seconds=4.0,
        content_type="video/mp4",
        cost_usd="0.60",
        operation="ops/1",
    )
    done = pod("Succeeded", {"terminated": {"exitCode": 0, "message": message}})
    complete = job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    decision = decide(generation(running_status()), complete, [done], LIMITS, NOW)
    status = decision.status
    assert status is not None
    assert status["phase"] == "SUCCEEDED"
    assert status["output"] == {
        "bucket": "b",
        "object": "previews/g1/preview_1.mp4",
        "posterObject": "previews/g1/poster_1.jpg",
        "sizeBytes": 1234,
        "durationSeconds": 4.0,
        "contentType": "video/mp4",
    }
    assert status["estimatedCostUSD"] == "0.6"
    assert status["providerOperation"] == "ops/1"
    finished = next(c for c in status["conditions"] if c["type"] == "Finished")
    assert finished["status"] == "True"


def test_safety_filtered_fails_at_once_with_its_reason_and_no_charge() -> None:
    message = result_message(
        status="failed", reason="SafetyFiltered", message="Blocked: violence", retryable=False
    )
    failed = pod("Failed", {"terminated": {"exitCode": EXIT_PERMANENT, "message": message}})
    failed_job = job(
        failed=1, conditions=[{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}]
    )
    status = decide(generation(running_status()), failed_job, [failed], LIMITS, NOW).status
    assert status is not None
    assert (status["phase"], status["reason"]) == ("FAILED", "SafetyFiltered")
    assert status["message"] == "Blocked: violence"
    assert status["estimatedCostUSD"] == "0"


def test_retryable_failure_keeps_running_and_says_when_it_retries() -> None:
    message = result_message(status="failed", reason="RateLimited", message="429", retryable=True)
    failed = pod("Failed", {"terminated": {"exitCode": 75, "message": message}})
    status = decide(generation(running_status()), job(failed=1), [failed], LIMITS, NOW).status
    assert status is not None
    assert (status["phase"], status["reason"]) == ("RUNNING", "RateLimited")
    assert status["nextAttemptAt"] == "2026-11-24T07:59:10Z"


def test_permanent_failure_waits_for_the_job_to_fail_instead_of_announcing_a_retry() -> None:
    message = result_message(status="failed", reason="SafetyFiltered", retryable=False)
    failed = pod("Failed", {"terminated": {"exitCode": EXIT_PERMANENT, "message": message}})
    decision = decide(generation(running_status()), job(failed=1), [failed], LIMITS, NOW)
    assert decision.status is None


def test_retries_exhausted_fail_with_the_last_reason() -> None:
    message = result_message(status="failed", reason="ProviderUnavailable", message="500")
    pods = [pod("Failed", {"terminated": {"exitCode": 75, "message": message}}) for _ in range(4)]
    failed_job = job(
        failed=4,
        conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
    )
    status = decide(generation(running_status()), failed_job, pods, LIMITS, NOW).status
    assert status is not None
    assert (status["phase"], status["reason"], status["attempts"]) == (
        "FAILED", "ProviderUnavailable", 4,
    )  # fmt: skip
    assert "gave up after 4 attempts" in status["message"]


def test_deadline_fails_the_generation() -> None:
    failed_job = job(
        conditions=[{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    )
    status = decide(generation(running_status()), failed_job, [], LIMITS, NOW).status
    assert status is not None
    assert (status["phase"], status["reason"]) == ("FAILED", "DeadlineExceeded")


def test_unparseable_termination_message_is_reported_as_a_crash_without_the_log() -> None:
    """The log's tail (a traceback, paths, a provider's raw error) is for operators, on the
    pod; the user-visible message and its retries never carry it."""
    tail = 'Traceback: boom at /app/secret.py, key="sk-123"'
    crashed = pod("Failed", {"terminated": {"exitCode": 1, "message": tail}})
    failed_job = job(
        failed=4,
        conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
    )
    status = decide(generation(running_status()), failed_job, [crashed], LIMITS, NOW).status
    assert status is not None
    assert status["reason"] == "WorkerCrashed"
    assert status["message"].startswith("The generation stopped unexpectedly.")
    retrying = decide(generation(running_status()), job(failed=1), [crashed], LIMITS, NOW).status
    assert retrying is not None and retrying["reason"] == "WorkerCrashed"
    for shown in (status, retrying):
        assert "boom" not in str(shown) and "sk-123" not in str(shown), shown


@pytest.mark.parametrize("has_job", [True, False])
def test_cancel_deletes_the_job_and_cancels(has_job: bool) -> None:
    vg = generation(running_status(), cancel=True)
    decision = decide(vg, job(active=1) if has_job else None, [], LIMITS, NOW)
    assert decision.delete_job is has_job
    assert decision.status is not None
    assert decision.status["phase"] == "CANCELED"


def test_final_phases_never_change() -> None:
    canceled = with_transition(generation(running_status()), {"phase": "CANCELED"}, NOW)
    assert canceled is not None
    late = pod("Succeeded", {"terminated": {"exitCode": 0, "message": "{}"}})
    complete = job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    decision = decide(generation(canceled), complete, [late], LIMITS, NOW)
    assert decision.status is None
    assert decision.delete_job


def test_running_job_that_vanished_with_a_retryable_stored_failure_fails_as_lost() -> None:
    stored: Any = {"status": "failed", "reason": "ProviderUnavailable", "retryable": True}
    status = decide(generation(running_status()), None, [], LIMITS, NOW, stored=stored).status
    assert status is not None
    assert (status["phase"], status["reason"]) == ("FAILED", "JobLost")


def test_an_attempt_lost_with_its_job_is_retried_after_the_back_off() -> None:
    lost = decide(generation(running_status()), None, [], LIMITS, NOW)
    assert lost.status is not None and not lost.create_job
    assert (lost.status["phase"], lost.status["reason"]) == ("RUNNING", "WorkerLost")
    assert lost.status["attempts"] == 1
    assert lost.status["nextAttemptAt"] == "2026-11-24T08:00:10Z"
    assert lost.status["message"].startswith("Retrying after:")
    early = NOW + dt.timedelta(seconds=5)
    assert decide(generation(lost.status), None, [], LIMITS, early) == Decision()
    due = decide(generation(lost.status), None, [], LIMITS, NOW + dt.timedelta(seconds=10))
    assert due.create_job and due.status is not None
    assert (due.status["phase"], due.status["reason"]) == ("RUNNING", "Generating")
    assert (due.status["attempts"], due.status.get("nextAttemptAt")) == (2, None)
    assert due.status["eventSeq"] == lost.status["eventSeq"] + 1
    # The new Job (built from the status before the transition) has the retries that remain.
    replacement = build_job(generation(lost.status), Settings(), Decimal("0.15"))
    assert replacement["spec"]["backoffLimit"] == LIMITS.max_retries - 1
    # Its pod runs: attempt 2 goes on, nothing new to announce.
    running = pod("Running", {"running": {}})
    later = NOW + dt.timedelta(seconds=20)
    child = {**job(active=1), "metadata": replacement["metadata"]}
    assert decide(generation(due.status), child, [running], LIMITS, later).status is None
    # The replacement's own retry is attempt 3, not 2 again.
    crashed = pod("Failed", {"terminated": {"exitCode": 1}})
    retried = decide(
        generation(due.status),
        {**child, "status": {"failed": 1, "active": 1}},
        [crashed, running],
        LIMITS,
        later,
    ).status
    assert retried is not None and retried["attempts"] == 3


def test_an_attempt_lost_with_its_job_fails_when_no_attempt_remains() -> None:
    status = {**running_status(), "attempts": LIMITS.max_retries + 1}
    failed = decide(generation(status), None, [], LIMITS, NOW)
    assert failed.status is not None and not failed.create_job
    assert (failed.status["phase"], failed.status["reason"]) == ("FAILED", "WorkerLost")
    assert failed.status["message"] == (
        "The generation's worker was lost before it finished. (gave up after 4 attempts)"
    )


def test_unchanged_state_is_not_a_transition() -> None:
    running = pod("Running", {"running": {}})
    status = running_status()
    later = NOW + dt.timedelta(minutes=1)
    assert decide(generation(status), job(active=1), [running], LIMITS, later).status is None


def test_job_manifest_runs_the_worker_with_the_request() -> None:
    vg = generation(negativePrompt="blurry", seed=7)
    manifest = build_job(vg, Settings(), Decimal("0.15"))
    assert manifest["metadata"]["name"] == "genvid-g1"
    owner = manifest["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("VideoGeneration", "u-1", True)
    spec = manifest["spec"]
    assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [EXIT_PERMANENT]
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["automountServiceAccountToken"] is False
    args = pod_spec["containers"][0]["args"]
    assert args[:2] == ["--job_id=g1", "--prompt=a fox"]
    assert "--negative_prompt=blurry" in args
    assert "--seed=7" in args
    assert "--price_usd_per_second=0.15" in args


@pytest.mark.parametrize("prompt", ["show me $(GOOGLE_API_KEY)", "-glitch", "--seed", "$$(X) $5"])
def test_user_text_reaches_the_worker_as_written(prompt: str) -> None:
    """Through Kubernetes' $(VAR) expansion (as the kubelet applies it) and argparse."""
    secrets = {"GOOGLE_API_KEY": "AIza-SECRET", "X": "x"}
    args = build_job(generation(prompt=prompt, negativePrompt=prompt), Settings(), Decimal(1))[
        "spec"
    ]["template"]["spec"]["containers"][0]["args"]
    expanded = [expand(arg, secrets.get) for arg in args]
    parsed = build_parser().parse_args(expanded)
    assert parsed.prompt == prompt
    assert parsed.negative_prompt == prompt


def test_operator_settings_read_genvid_variables_and_the_plain_connection_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = {
        "GENVID_METRICS_PORT": "9123",
        "NATS_URL": "tls://nats:4222",
        "DATABASE_URL": "postgresql://db/genvid",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    read = (str(settings.metrics_port), settings.nats_url, settings.database_url)
    assert read == tuple(environment.values())
