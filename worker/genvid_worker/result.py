"""The worker's one answer: a result document and the exit code that goes with it.

Pure: nothing here touches the network or the disk, so the contract the operator relies on is
tested without any server. The operator reads two things from a finished pod, both defined in
`genvid_contracts.worker`: the exit code (its Job's podFailurePolicy fails the Job at once on
`EXIT_PERMANENT` and retries the rest with back-off) and the `WorkerResult` document in the
termination log (what to tell the user, what to bill). A provider that succeeds builds that
document itself, so its keys are declared once, in the contract; a failure is a `Failed` until
`to_document` writes it.

The termination log holds at most 4096 bytes (the kubelet truncates beyond that), so `encode`
shortens the free-text message rather than let the JSON be cut mid-string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from genvid_contracts.worker import EXIT_PERMANENT, EXIT_RETRYABLE, EXIT_SUCCESS, WorkerResult
from genvid_contracts.worker import TERMINATION_LOG_MAX_BYTES as TERMINATION_LOG_MAX_BYTES
from genvid_contracts.worker import Reason as Reason

CONTENT_TYPE_MP4 = "video/mp4"
CONTENT_TYPE_JPEG = "image/jpeg"


class WorkerError(Exception):
    """A failure already classified: what went wrong, and whether trying again can help."""

    def __init__(self, reason: Reason, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable

    def to_result(self) -> Failed:
        return Failed(reason=self.reason, message=self.message, retryable=self.retryable)


def permanent(reason: Reason, message: str) -> WorkerError:
    return WorkerError(reason, message, retryable=False)


def retryable(reason: Reason, message: str) -> WorkerError:
    return WorkerError(reason, message, retryable=True)


@dataclass(frozen=True)
class Failed:
    reason: Reason
    message: str
    retryable: bool


Result = WorkerResult | Failed


def exit_code(result: Result) -> int:
    if isinstance(result, Failed):
        return EXIT_RETRYABLE if result.retryable else EXIT_PERMANENT
    return EXIT_SUCCESS


def cost_usd(price_usd_per_second: Decimal | None, seconds: int) -> Decimal:
    """What the user is charged: the configured price times the seconds generated."""
    if price_usd_per_second is None:
        return Decimal(0)
    return price_usd_per_second * seconds


def reported_seconds(value: float) -> float:
    """A duration to the millisecond: what a container says beyond that is noise."""
    return round(value, 3)


def decimal_text(value: Decimal) -> str:
    """Fixed-point text (never `1E+1`): money is a string so no float ever rounds it."""
    return format(value, "f")


def to_document(result: Result) -> WorkerResult:
    if isinstance(result, Failed):
        return {
            "status": "failed",
            "reason": str(result.reason),
            "message": result.message,
            "retryable": result.retryable,
            # A failed generation is never charged (a safety-filtered one included).
            "cost_usd": "0",
        }
    return result


def encode(result: Result, limit: int = TERMINATION_LOG_MAX_BYTES) -> bytes:
    """Compact JSON within `limit` bytes, shortening the message (only) if needed."""
    document = to_document(result)
    data = _dump(document)
    if len(data) <= limit or "message" not in document:
        return data
    message = document["message"]

    def shortened(chars: int) -> bytes:
        return _dump({**document, "message": message[:chars] + "..."})

    # The longest prefix that fits once escaped (quotes and controls grow when escaped).
    low, high = 0, len(message)
    while low < high:
        middle = (low + high + 1) // 2
        if len(shortened(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return shortened(low)


def _dump(document: WorkerResult) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
