"""Kubernetes Events on a VideoGeneration, one per transition, so `kubectl describe vg` tells
its story (queued, waiting for capacity, running, retrying, finished).

They go through kopf's poster: a queue per object drained in order by a bounded pool of
workers, with back-off on failure, so a burst of transitions never floods the apiserver and
never blocks a reconcile. Identical events of one object are merged by the apiserver (count).
"""

from __future__ import annotations

import logging
from typing import cast

import kopf

from genvid_contracts.resource import VideoGeneration, VideoGenerationStatus
from genvid_contracts.status import GenerationStatus

log = logging.getLogger(__name__)

_WARNING_PHASES = frozenset({GenerationStatus.FAILED, GenerationStatus.REJECTED})


def transition_event(
    status: VideoGenerationStatus, old: VideoGenerationStatus
) -> tuple[str, str, str]:
    """(type, reason, message) of the Event for a transition from `old` to `status` (pure)."""
    phase = status.get("phase") or ""
    kind = "Warning" if phase in _WARNING_PHASES else "Normal"
    reason = status.get("reason") or phase.capitalize()
    step = f"{old.get('phase') or 'new'} -> {phase}"
    message = f"{step}: {status['message']}" if status.get("message") else step
    return kind, reason, message[:1024]


def post_transition(vg: VideoGeneration, old: VideoGenerationStatus) -> None:
    kind, reason, message = transition_event(vg.get("status") or {}, old)
    try:
        # kopf reads apiVersion, kind and metadata (name, namespace, uid) of any mapping.
        kopf.event(cast(kopf.Body, vg), type=kind, reason=reason, message=message)
    except LookupError:
        # Outside kopf's context (no poster): nothing to post with.
        log.debug("no event for %s: outside the operator", vg["metadata"]["name"])
