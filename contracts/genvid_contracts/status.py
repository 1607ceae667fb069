"""The one status vocabulary of a generation, shared by the api, the operator and the events.

The VideoGeneration's `status.phase`, the `status` column of `video_generation_jobs`, the
`status` of a transition event and the HTTP API all speak these values, so no component
translates another's.
"""

from __future__ import annotations

from enum import StrEnum


class GenerationStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"


TERMINAL_STATUSES = frozenset(
    {
        GenerationStatus.SUCCEEDED,
        GenerationStatus.FAILED,
        GenerationStatus.CANCELED,
        GenerationStatus.REJECTED,
    }
)
