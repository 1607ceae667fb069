"""The one place that decides a VideoGeneration's phase.

`decide` is pure: from the VideoGeneration, its Job and the Job's pods as they are now, it
returns what to do (create or delete the Job) and the status the object should have. Handlers
gather the inputs and carry out the decision; tests call `decide` without a cluster.

    (new) -> QUEUED -> RUNNING -> SUCCEEDED | FAILED
      |        |          |
      +--------+----------+-----> CANCELED   (spec.cancel; spec.deadline passed)
      +-> REJECTED                           (unknown model, over the cost limit)

The phases are `genvid_contracts.status.GenerationStatus`, the vocabulary every component
speaks; the worker's outcome is read through `genvid_contracts.worker`.

A QUEUED generation gets its Job only once admitted under the concurrency caps (`Admission`,
decided by `genvid_operator.admission` from Postgres); until then its reason is
WaitingForCapacity, its `Admitted` condition False and `queuePosition` its place in line.

A generation not finished by its `spec.deadline` ends CANCELED with reason DeadlineExceeded,
whatever phase it is in, as a cancel at that moment would (its Job deleted; settled as a
cancel: `genvid_contracts.pricing`). A running worker is stopped at the deadline by Kubernetes
(its Job's `activeDeadlineSeconds`, `jobspec.active_deadline_seconds`), and that Job's failure
triggers the pass that records it; a generation waiting for capacity is never admitted past its
deadline, and the admission timer kicks the pass that ends it (`admission.Admissions.overdue`).
A Job that finished is judged by how it finished: the deadline ends only what was still
unfinished, and a Job stopped by the operator's own runtime limit (not annotated
`jobspec.STOPS_AT_DEADLINE_ANNOTATION`) fails DeadlineExceeded as always.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from genvid_contracts.resource import (
    Condition,
    VideoGeneration,
    VideoGenerationStatus,
    deadline_of,
)
from genvid_contracts.status import TERMINAL_STATUSES, GenerationStatus
from genvid_contracts.worker import EXIT_PERMANENT, Reason, WorkerResult, read_result
from genvid_operator.jobspec import CONTAINER, job_name, prior_attempts, stops_at_deadline

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED, REJECTED = GenerationStatus

WAITING_FOR_CAPACITY = "WaitingForCapacity"
WORKER_CRASHED = "WorkerCrashed"
WORKER_LOST = "WorkerLost"
DEADLINE_EXCEEDED = "DeadlineExceeded"
_CRASHED_MESSAGE = "The generation stopped unexpectedly."
_LOST_MESSAGE = "The generation's worker was lost before it finished."
_WAITING_MESSAGE = "Waiting for capacity: the concurrency caps are reached."

# The fields whose change is a transition: it gets the next eventSeq and is mirrored.
_TRANSITION_FIELDS = ("phase", "reason", "message", "attempts")

# A Kubernetes object (Job, Pod) as the apiserver returns it.
Json = dict[str, Any]


@dataclass(frozen=True)
class Limits:
    """The settings `decide` needs, so it stays independent of how settings are loaded."""

    price_usd_per_second: Decimal | None
    max_cost_usd: Decimal
    max_retries: int
    active_deadline_seconds: int


@dataclass(frozen=True)
class Admission:
    """Whether the generation may have its Job now, else its place in the queue."""

    admitted: bool
    position: int | None = None


ADMITTED = Admission(admitted=True)


@dataclass(frozen=True)
class Decision:
    status: VideoGenerationStatus | None = None
    create_job: bool = False
    delete_job: bool = False


def timestamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(
    type_: str, status: bool, reason: str, message: str, now: str, generation: int
) -> Condition:
    return {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now,
    }


def _conditions(
    old: list[Condition],
    phase: str,
    reason: str,
    message: str,
    now: str,
    generation: int,
    admitted: bool,
) -> list[Condition]:
    """Accepted, Admitted, Running and Finished, each keeping its time unless its status
    changes."""
    admission = ("Admitted", "Capacity was available.") if admitted else (reason or phase, message)
    desired = [
        _condition(
            "Accepted",
            phase != REJECTED,
            reason if phase == REJECTED else "Validated",
            message if phase == REJECTED else "The request is within the limits.",
            now,
            generation,
        ),
        _condition("Admitted", admitted, *admission, now, generation),
        _condition("Running", phase == RUNNING, reason or phase, message, now, generation),
        _condition(
            "Finished", phase in TERMINAL_STATUSES, reason or phase, message, now, generation
        ),
    ]
    previous = {c["type"]: c for c in old}
    for condition in desired:
        before = previous.get(condition["type"])
        if before is not None and before["status"] == condition["status"]:
            condition["lastTransitionTime"] = before["lastTransitionTime"]
    return desired


def with_transition(
    vg: VideoGeneration, changes: Json, now: dt.datetime
) -> VideoGenerationStatus | None:
    """The full new status, or None when `changes` would not change anything.

    A None in `changes` unsets that field.
    """
    old: VideoGenerationStatus = vg.get("status") or {}
    merged = {**old, **changes}
    # The keys are the status' own and `changes` only holds decide's values for them.
    new = cast(
        VideoGenerationStatus, {key: value for key, value in merged.items() if value is not None}
    )
    if not new.get("phase"):
        return None
    generation = int(vg["metadata"].get("generation", 1))
    new["conditions"] = _conditions(
        old.get("conditions", []),
        new["phase"],
        new.get("reason", ""),
        new.get("message", ""),
        timestamp(now),
        generation,
        bool(new.get("admittedAt")),
    )
    new["observedGeneration"] = generation
    if any(old.get(key) != new.get(key) for key in _TRANSITION_FIELDS):
        new["eventSeq"] = int(old.get("eventSeq", 0)) + 1
    if _same(old, new):
        return None
    return new


def _same(old: VideoGenerationStatus, new: VideoGenerationStatus) -> bool:
    def essence(status: VideoGenerationStatus) -> Json:
        conditions = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions", [])
        ]
        return {**status, "conditions": conditions}

    return essence(old) == essence(new)


def worker_result(pod: Json) -> WorkerResult:
    """The worker's termination message, or what the kubelet reported instead."""
    for container in pod.get("status", {}).get("containerStatuses") or []:
        if container.get("name") != CONTAINER:
            continue
        terminated = (container.get("state") or {}).get("terminated")
        if not terminated:
            return {}
        message = terminated.get("message") or ""
        result = read_result(message)
        if result is not None:
            return result
        # Not the worker's document: it died before writing one. What the kubelet kept instead
        # (the log's tail) is for operators, who read it on the pod (`kubectl describe pod`,
        # status.jobName's pod); users get a reason code and words fit for them.
        return {"status": "failed", "reason": WORKER_CRASHED, "message": _CRASHED_MESSAGE}
    return {}


def _pod_state(pod: Json) -> str:
    for container in pod.get("status", {}).get("containerStatuses") or []:
        if container.get("name") == CONTAINER:
            state = container.get("state") or {}
            if "running" in state:
                return "running"
            if "terminated" in state:
                return "terminated"
    return "waiting"


def _finished_at(pod: Json) -> str:
    for container in pod.get("status", {}).get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated.get("finishedAt"):
            return str(terminated["finishedAt"])
    return ""


def _job_condition(job: Json) -> tuple[str, str] | None:
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return condition["type"], condition.get("reason", "")
    return None


def _attempts(job: Json) -> int:
    status = job.get("status", {})
    return (
        prior_attempts(job)
        + int(status.get("failed") or 0)
        + int(status.get("succeeded") or 0)
        + int(status.get("active") or 0)
    )


def _estimated_cost(limits: Limits, seconds: int) -> Decimal | None:
    if limits.price_usd_per_second is None:
        return None
    return limits.price_usd_per_second * seconds


def _money(amount: Decimal | str) -> str:
    return format(Decimal(amount).normalize(), "f")


def decide(
    vg: VideoGeneration,
    job: Json | None,
    pods: list[Json],
    limits: Limits,
    now: dt.datetime,
    admission: Admission = ADMITTED,
    stored: WorkerResult | None = None,
) -> Decision:
    """`stored` is the result the worker stored in the bucket, read only when the Job or its
    pods are gone (see `needs_stored_result`)."""
    spec = vg["spec"]
    status: VideoGenerationStatus = vg.get("status") or {}
    phase = status.get("phase")
    stamp = timestamp(now)

    def transition(**changes: Any) -> VideoGenerationStatus | None:
        return with_transition(vg, changes, now)

    def end(phase: str, reason: str, message: str, **changes: Any) -> VideoGenerationStatus | None:
        """A transition to a terminal phase, which always records when it ended."""
        return transition(phase=phase, reason=reason, message=message, finishedAt=stamp, **changes)

    if phase in TERMINAL_STATUSES:
        # A canceled generation's Job may still exist if deleting it failed earlier.
        return Decision(delete_job=phase == CANCELED and job is not None)

    if spec.get("cancel"):
        return Decision(
            status=end(CANCELED, "CanceledByUser", "Canceled at the owner's request."),
            delete_job=job is not None,
        )

    if _past_deadline(vg, job, now, stored):
        return Decision(status=_canceled_at_deadline(vg, now), delete_job=job is not None)

    if phase is None:
        cost = _estimated_cost(limits, int(spec["durationSeconds"]))
        if cost is None:
            return Decision(
                status=end(REJECTED, "UnknownModel", f"Model {spec['model']!r} is not offered.")
            )
        if cost > limits.max_cost_usd:
            return Decision(
                status=end(
                    REJECTED,
                    "CostLimitExceeded",
                    (
                        f"Estimated cost ${_money(cost)} is over the limit of "
                        f"${_money(limits.max_cost_usd)} per generation."
                    ),
                    estimatedCostUSD=_money(cost),
                )
            )
        queued = {
            "phase": QUEUED,
            "attempts": 0,
            "queuedAt": stamp,
            "jobName": job_name(vg["metadata"]["name"]),
            "estimatedCostUSD": _money(cost),
        }
        if not admission.admitted:
            return Decision(
                status=transition(
                    **queued,
                    reason=WAITING_FOR_CAPACITY,
                    message=_WAITING_MESSAGE,
                    queuePosition=admission.position,
                )
            )
        return Decision(
            status=transition(
                **queued, reason="Accepted", message="Waiting for a worker.", admittedAt=stamp
            ),
            create_job=job is None,
        )

    if job is None and phase == QUEUED:
        if not admission.admitted:
            # Not a transition: only the place in line moves.
            return Decision(status=transition(queuePosition=admission.position))
        if status.get("admittedAt"):
            return Decision(create_job=True)
        return Decision(
            status=transition(
                reason="Admitted",
                message="Waiting for a worker.",
                admittedAt=stamp,
                queuePosition=None,
            ),
            create_job=True,
        )

    if job is None:
        return _without_job(vg, stored, limits, now)

    started = [pod for pod in pods if _pod_state(pod) != "waiting"]
    attempts = max(int(status.get("attempts") or 0), _attempts(job), len(started))
    if phase == QUEUED and started:
        # Never skip Running, even when a worker finished before the operator saw it run.
        first_start = min(pod["status"].get("startTime") or stamp for pod in started)
        return Decision(
            status=transition(
                phase=RUNNING,
                reason="Generating",
                message=f"Generating (attempt 1 of {limits.max_retries + 1}).",
                attempts=max(attempts, 1),
                startedAt=first_start,
            )
        )

    finished = _job_condition(job)
    if finished is not None:
        return Decision(status=_finished(vg, job, pods, limits, finished, attempts, now, stored))

    if any(_pod_state(pod) == "running" for pod in pods):
        return Decision(
            status=transition(
                phase=RUNNING,
                reason="Generating",
                message=f"Generating (attempt {attempts} of {limits.max_retries + 1}).",
                attempts=attempts,
                nextAttemptAt=None,
            )
        )

    failed = _latest_failure(pods)
    if phase == RUNNING and failed and not _permanent(failed):
        result = worker_result(failed)
        return Decision(
            status=transition(
                phase=RUNNING,
                reason=result.get("reason") or "Retrying",
                message=f"Retrying after: {result.get('message') or 'the worker failed'}",
                attempts=attempts,
                nextAttemptAt=_next_attempt(failed, int(job.get("status", {}).get("failed") or 1)),
            )
        )
    return Decision()


def _past_deadline(
    vg: VideoGeneration, job: Json | None, now: dt.datetime, stored: WorkerResult | None
) -> bool:
    """The deadline has passed and nothing has finished: no Job that ended (how it ended
    decides, see `_finished`), no final result stored by a worker whose Job is gone."""
    deadline = deadline_of(vg["spec"])
    if deadline is None or now < deadline:
        return False
    if job is not None:
        return _job_condition(job) is None
    return stored is None or (
        stored.get("status") != "succeeded" and stored.get("retryable") is not False
    )


def _canceled_at_deadline(vg: VideoGeneration, now: dt.datetime) -> VideoGenerationStatus | None:
    """What a cancel at the deadline gives: CANCELED, finished now."""
    changes = {
        "phase": CANCELED,
        "reason": DEADLINE_EXCEEDED,
        "message": f"Canceled: not finished by its deadline, {vg['spec'].get('deadline')}.",
        "finishedAt": timestamp(now),
    }
    return with_transition(vg, changes, now)


def needs_stored_result(vg: VideoGeneration, job: Json | None, pods: list[Json]) -> bool:
    """Whether `decide` needs the stored result: a started generation whose Job is gone, or
    whose Job finished without a pod left to tell how."""
    if (vg.get("status") or {}).get("phase") != RUNNING or vg["spec"].get("cancel"):
        return False
    if job is None:
        return True
    return _job_condition(job) is not None and not any(
        pod.get("status", {}).get("phase") in ("Succeeded", "Failed") for pod in pods
    )


def _permanent(pod: Json) -> bool:
    """A permanent failure: the Job is about to fail, no retry is coming (podFailurePolicy)."""
    for container in pod.get("status", {}).get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        if terminated.get("exitCode") == EXIT_PERMANENT:
            return True
    return worker_result(pod).get("retryable") is False


def _retry_at(finished: dt.datetime, failures: int) -> str:
    """The Job controller's back-off: 10 s doubled per failure, at most 6 min."""
    delay = min(10 * 2 ** max(failures - 1, 0), 360)
    return timestamp(finished + dt.timedelta(seconds=delay))


def _next_attempt(failed: Json, failures: int) -> str | None:
    """When the Job controller will retry the failed pod."""
    finished = _finished_at(failed)
    return _retry_at(dt.datetime.fromisoformat(finished), failures) if finished else None


def _latest_failure(pods: list[Json]) -> Json | None:
    failed = [pod for pod in pods if pod.get("status", {}).get("phase") == "Failed"]
    return max(failed, key=_finished_at, default=None)


def _finished(
    vg: VideoGeneration,
    job: Json,
    pods: list[Json],
    limits: Limits,
    condition: tuple[str, str],
    attempts: int,
    now: dt.datetime,
    stored: WorkerResult | None,
) -> VideoGenerationStatus | None:
    """The Job's end, told by its pods' termination messages or, if the pods are gone, by
    the result the worker stored beside the preview."""
    kind, job_reason = condition
    if kind == "Complete":
        succeeded = [pod for pod in pods if pod.get("status", {}).get("phase") == "Succeeded"]
        result = worker_result(succeeded[0]) if succeeded else stored or WorkerResult()
        return _succeeded(vg, result, attempts, now)
    if job_reason == "DeadlineExceeded" and stops_at_deadline(job):
        return _canceled_at_deadline(vg, now)
    if job_reason == "DeadlineExceeded":
        return _failed(
            vg,
            "DeadlineExceeded",
            f"The generation did not finish within {limits.active_deadline_seconds} seconds.",
            None,
            attempts,
            now,
        )
    failed = _latest_failure(pods)
    result = worker_result(failed) if failed else stored or WorkerResult()
    reason = result.get("reason") or job_reason or "WorkerFailed"
    message = result.get("message") or "The worker failed."
    if job_reason == "BackoffLimitExceeded":
        message = f"{message} (gave up after {attempts} attempts)"
    return _failed(vg, reason, message, _charged(result), attempts, now)


def _without_job(
    vg: VideoGeneration, stored: WorkerResult | None, limits: Limits, now: dt.datetime
) -> Decision:
    """A started generation whose Job is gone, pods and all.

    With a stored result, that result tells the end. Without one, the attempt was lost with
    its pod (a node gone, a Job deleted by hand) before the worker finished: like a crash, it
    is retried after the Job controller's back-off (a new Job, once `nextAttemptAt` has
    passed) while attempts remain, else the generation fails `WorkerLost`.
    """
    status: VideoGenerationStatus = vg.get("status") or {}
    attempts = int(status.get("attempts") or 1)
    if stored is not None:
        return Decision(status=_from_stored(vg, stored, attempts, now))
    retry_at = status.get("nextAttemptAt")
    if status.get("reason") == WORKER_LOST and retry_at:
        if timestamp(now) < retry_at:
            return Decision()
        retry = {
            "reason": "Generating",
            "message": f"Generating (attempt {attempts + 1} of {limits.max_retries + 1}).",
            "attempts": attempts + 1,
            "nextAttemptAt": None,
        }
        return Decision(status=with_transition(vg, retry, now), create_job=True)
    if attempts <= limits.max_retries:
        lost = {
            "reason": WORKER_LOST,
            "message": f"Retrying after: {_LOST_MESSAGE}",
            "nextAttemptAt": _retry_at(now, attempts),
        }
        return Decision(status=with_transition(vg, lost, now))
    message = f"{_LOST_MESSAGE} (gave up after {attempts} attempts)"
    return Decision(status=_failed(vg, WORKER_LOST, message, None, attempts, now))


def _from_stored(
    vg: VideoGeneration, stored: WorkerResult, attempts: int, now: dt.datetime
) -> VideoGenerationStatus | None:
    """A Job gone before the operator read it: the stored result if it is final, else
    `JobLost` (a retryable failure would have been retried by the Job that is gone)."""
    if stored.get("status") == "succeeded":
        return _succeeded(vg, stored, attempts, now)
    if stored.get("retryable") is False:
        reason = stored.get("reason") or "WorkerFailed"
        message = stored.get("message") or "The worker failed."
        return _failed(vg, reason, message, _charged(stored), attempts, now)
    return _failed(
        vg, "JobLost", "The worker Job was deleted before it finished.", None, attempts, now
    )


def _succeeded(
    vg: VideoGeneration, result: WorkerResult, attempts: int, now: dt.datetime
) -> VideoGenerationStatus | None:
    output = {
        "bucket": result.get("bucket"),
        "object": result.get("object"),
        "posterObject": result.get("poster_object"),
        "sizeBytes": result.get("size_bytes"),
        "durationSeconds": result.get("duration_seconds"),
        "contentType": result.get("content_type"),
    }
    changes: Json = {
        "phase": SUCCEEDED,
        "reason": "Generated",
        "message": "The preview is ready.",
        "attempts": attempts,
        "finishedAt": timestamp(now),
        "output": {k: v for k, v in output.items() if v is not None},
        "providerOperation": result.get("operation"),
        "nextAttemptAt": None,
    }
    if result.get("cost_usd") is not None:
        changes["estimatedCostUSD"] = _money(result["cost_usd"])
    return with_transition(vg, changes, now)


def _charged(result: WorkerResult) -> str | None:
    """What a failure costs, None to let the estimate stand."""
    if result.get("reason") == Reason.SAFETY_FILTERED:
        return "0"
    return _money(result["cost_usd"]) if result.get("cost_usd") is not None else None


def _failed(
    vg: VideoGeneration,
    reason: str,
    message: str,
    cost: str | None,
    attempts: int,
    now: dt.datetime,
) -> VideoGenerationStatus | None:
    failure: Json = {
        "phase": FAILED,
        "reason": reason,
        "message": message,
        "attempts": attempts,
        "finishedAt": timestamp(now),
        "nextAttemptAt": None,
    }
    if cost is not None:  # otherwise the estimate stands
        failure["estimatedCostUSD"] = cost
    return with_transition(vg, failure, now)
