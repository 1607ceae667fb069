"""The worker Job for a VideoGeneration, built as a plain dict by pure functions.

Retries belong to Kubernetes: the Job's podFailurePolicy fails it at once on the worker's
permanent-failure exit code (`genvid_contracts.worker.EXIT_PERMANENT`) and counts every other
failure against backoffLimit, and the Job controller spaces the retries with its exponential
back-off (10 s, 20 s, 40 s, ... capped at 6 min). The operator only reads the outcome.

A generation with a deadline (`spec.deadline`) gets a Job whose `activeDeadlineSeconds` ends no
later than it: Kubernetes stops the worker then (the Job fails `DeadlineExceeded`), even if
no pass of the operator comes in time.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

from genvid_contracts.resource import (
    GROUP,
    KIND,
    VERSION,
    VideoGeneration,
    VideoGenerationSpec,
    deadline_of,
)
from genvid_contracts.worker import EXIT_PERMANENT
from genvid_operator.config import Settings

CONTAINER = "worker"
GENERATION_LABEL = "genvid.io/generation"
MANAGED_BY = "genvid-operator"


def job_name(generation: str) -> str:
    """Deterministic, so a restarted operator finds the Job instead of making a second one."""
    return f"genvid-{generation}"


def labels(generation: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "genvid-worker",
        "app.kubernetes.io/part-of": "genvid",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        GENERATION_LABEL: generation,
    }


def price_per_second(settings: Settings, model: str) -> Decimal | None:
    return settings.prices_usd_per_second.get(model)


def literal(text: str) -> str:
    """Escape `$` so Kubernetes' `$(VAR)` expansion of args leaves user text as written.

    Without it a prompt such as `$(GOOGLE_API_KEY)` would be replaced by the worker's secret.
    """
    return text.replace("$", "$$")


def worker_args(name: str, spec: VideoGenerationSpec, price: Decimal) -> list[str]:
    """`--flag=value` throughout: a prompt such as `-glitch` must not read as a flag."""
    options: dict[str, object] = {
        "job_id": name,
        "prompt": spec["prompt"],
        "model": spec["model"],
        "duration_seconds": spec["durationSeconds"],
        "aspect_ratio": spec["aspectRatio"],
        "price_usd_per_second": price,
        "negative_prompt": spec.get("negativePrompt") or None,
        "seed": spec.get("seed"),
    }
    return [f"--{key}={literal(str(value))}" for key, value in options.items() if value is not None]


# How many attempts earlier Jobs of the generation used (their pods lost with them): the
# Job's own retries are what the generation has left, so no Job restarts the count.
PRIOR_ATTEMPTS_ANNOTATION = f"{GROUP}/prior-attempts"


def prior_attempts(job: dict[str, Any]) -> int:
    return int(job.get("metadata", {}).get("annotations", {}).get(PRIOR_ATTEMPTS_ANNOTATION) or 0)


# On a Job whose activeDeadlineSeconds is the time left until the generation's deadline rather
# than the operator's runtime limit: its DeadlineExceeded is the generation's deadline.
STOPS_AT_DEADLINE_ANNOTATION = f"{GROUP}/stops-at-deadline"


def active_deadline_seconds(
    spec: VideoGenerationSpec, limit: int, now: dt.datetime
) -> tuple[int, bool]:
    """The Job's activeDeadlineSeconds, and whether the generation's deadline is what sets it:
    the time left until the deadline when that is not longer than the operator's runtime limit,
    rounded up so the Job never stops before the deadline (and at least 1 s, the least
    Kubernetes accepts; `decide` creates no Job past the deadline)."""
    deadline = deadline_of(spec)
    if deadline is None:
        return limit, False
    left = max(1, math.ceil((deadline - now).total_seconds()))
    return (left, True) if left <= limit else (limit, False)


def stops_at_deadline(job: dict[str, Any]) -> bool:
    annotations = job.get("metadata", {}).get("annotations") or {}
    return annotations.get(STOPS_AT_DEADLINE_ANNOTATION) == "true"


def build_job(
    vg: VideoGeneration, settings: Settings, price: Decimal, now: dt.datetime | None = None
) -> dict[str, Any]:
    """`now`: the time the Job is created at (the present unless given), which the time left
    until the deadline counts from."""
    meta = vg["metadata"]
    name = meta["name"]
    prior = int((vg.get("status") or {}).get("attempts") or 0)
    pod_labels = labels(name)
    config_name = settings.worker_config_name
    active_deadline, at_deadline = active_deadline_seconds(
        vg["spec"], settings.active_deadline_seconds, now or dt.datetime.now(dt.UTC)
    )
    annotations = {PRIOR_ATTEMPTS_ANNOTATION: str(prior)}
    if at_deadline:
        annotations[STOPS_AT_DEADLINE_ANNOTATION] = "true"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(name),
            "namespace": meta["namespace"],
            "labels": pod_labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": name,
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": max(settings.max_retries - prior, 0),
            "activeDeadlineSeconds": active_deadline,
            # Shortened once the terminal status is synced (reconcile): until then a safety net.
            "ttlSecondsAfterFinished": settings.unsynced_job_ttl_seconds,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": CONTAINER,
                            "operator": "In",
                            "values": [EXIT_PERMANENT],
                        },
                    },
                    # Evictions and preemptions are not the worker's fault: retry for free.
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.worker_service_account,
                    # The worker needs no Kubernetes credentials.
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": settings.worker_image,
                            "command": list(settings.worker_command),
                            "args": worker_args(name, vg["spec"], price),
                            "envFrom": [
                                {"configMapRef": {"name": config_name, "optional": True}},
                                {"secretRef": {"name": config_name, "optional": True}},
                            ],
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "resources": {
                                "requests": {
                                    "cpu": settings.worker_cpu,
                                    "memory": settings.worker_memory,
                                },
                                "limits": {"memory": settings.worker_memory},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                },
            },
        },
    }
