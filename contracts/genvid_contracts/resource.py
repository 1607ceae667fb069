"""The VideoGeneration custom resource: its coordinates, spec and status, typed once.

The CRD (crds/videogenerations.genvid.io.yaml) is what the apiserver enforces; these types are
what the api writes into `spec` and what the operator reads from it and writes into `status`,
so mypy checks both against one shape. Field names are the resource's own (camelCase).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NotRequired, TypedDict

from genvid_contracts.status import GenerationStatus

# The model of a request that names none, for the api, the operator and the worker alike (the
# worker may import only genvid_contracts.worker, so it is defined there). The CRD's default for
# spec.model repeats it as a literal; a test keeps the two equal.
from genvid_contracts.worker import DEFAULT_MODEL as DEFAULT_MODEL

GROUP = "genvid.io"
VERSION = "v1alpha1"
PLURAL = "videogenerations"
KIND = "VideoGeneration"
OWNER_LABEL = "genvid.io/owner"
# The owner's username, for people (`kubectl get vg` prints it); an annotation, since a username
# need not be a valid label value. spec.owner (the id) is what authorizes.
OWNER_NAME_ANNOTATION = "genvid.io/owner-name"
PART_OF_LABELS = {"app.kubernetes.io/part-of": "genvid"}


class VideoGenerationSpec(TypedDict):
    """What was asked for; immutable but for `cancel` (CEL rules in the CRD)."""

    prompt: str
    model: str
    durationSeconds: int
    aspectRatio: str
    owner: str
    cancel: bool
    negativePrompt: NotRequired[str]
    seed: NotRequired[int]
    idempotencyKey: NotRequired[str]
    # RFC 3339, whole seconds: finished by then, or CANCELED with reason DeadlineExceeded.
    deadline: NotRequired[str]


def deadline_text(moment: dt.datetime) -> str:
    """`spec.deadline` as the api writes it: RFC 3339 in UTC, to the second (as Kubernetes
    writes its own times, and as `kubectl get` prints it)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deadline_of(spec: VideoGenerationSpec) -> dt.datetime | None:
    """`spec.deadline` as a time; None without one. The CRD's date-time format also takes a
    time without its zone (written by hand): that one is UTC, as Kubernetes' own times are."""
    text = spec.get("deadline")
    if not text:
        return None
    deadline = dt.datetime.fromisoformat(text)
    return deadline if deadline.tzinfo is not None else deadline.replace(tzinfo=dt.UTC)


class Condition(TypedDict):
    type: str
    status: str
    reason: str
    message: str
    observedGeneration: int
    lastTransitionTime: str


class Output(TypedDict, total=False):
    bucket: str
    object: str
    posterObject: str
    sizeBytes: int
    durationSeconds: float
    contentType: str


class VideoGenerationStatus(TypedDict, total=False):
    """Written by the operator only. Absent keys are unset (a new resource has no status)."""

    phase: GenerationStatus
    reason: str
    message: str
    conditions: list[Condition]
    observedGeneration: int
    eventSeq: int
    syncedSeq: int
    jobName: str
    attempts: int
    nextAttemptAt: str
    queuedAt: str
    admittedAt: str  # admitted under the concurrency caps: its Job may exist from then on
    queuePosition: int | None  # while waiting for capacity: 1 is admitted next
    startedAt: str
    finishedAt: str
    providerOperation: str
    output: Output
    estimatedCostUSD: str


class VideoGeneration(TypedDict):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    spec: VideoGenerationSpec
    status: NotRequired[VideoGenerationStatus]
