"""What the worker tells the operator: its exit codes and its termination-message document.

The worker writes these and the operator reads them, so both import this one definition and
mypy checks each side's keys against it. The worker imports nothing else of GenVid, so this
module imports only the standard library (an import contract in pyproject.toml says so).

The Job's podFailurePolicy fails the Job at once on `EXIT_PERMANENT` and retries every other
failure with back-off; the document says what to tell the user and what to bill.
"""

from __future__ import annotations

import json
import types
from enum import StrEnum
from typing import Literal, TypedDict, Union, get_args, get_origin, get_type_hints

EXIT_SUCCESS = 0
EXIT_PERMANENT = 3
EXIT_RETRYABLE = 75  # EX_TEMPFAIL from sysexits.h

# The model when the command line names none (see genvid_contracts.resource.DEFAULT_MODEL).
DEFAULT_MODEL = "veo-3.0-fast-generate-001"

# The kubelet keeps at most this much of a termination message.
TERMINATION_LOG_MAX_BYTES = 4096


def result_object(job_id: str) -> str:
    """Where the worker also stores its result, beside the preview: the termination message
    goes when the pod does, this object stays for the operator to read."""
    return f"previews/{job_id}/result.json"


class Reason(StrEnum):
    """Machine-readable failure reasons; the operator copies them into the status' reason."""

    INVALID_REQUEST = "InvalidRequest"
    SAFETY_FILTERED = "SafetyFiltered"
    PROVIDER_TIMEOUT = "ProviderTimeout"
    PROVIDER_UNAVAILABLE = "ProviderUnavailable"
    PROVIDER_ERROR = "ProviderError"
    RATE_LIMITED = "RateLimited"
    OPERATION_LOST = "OperationLost"
    STORAGE_UNAVAILABLE = "StorageUnavailable"
    STORAGE_ERROR = "StorageError"
    CONFIGURATION_ERROR = "ConfigurationError"
    INTERRUPTED = "Interrupted"
    INTERNAL_ERROR = "InternalError"


class WorkerResult(TypedDict, total=False):
    """The termination message, one JSON object.

    The worker writes every key of its outcome; a reader treats each as optional, because a
    worker that crashed, or one of another version, may have written fewer.
    """

    status: Literal["succeeded", "failed"]
    # Succeeded: where the preview is and what made it.
    provider: str
    model: str
    bucket: str
    object: str
    poster_object: str
    size_bytes: int
    duration_seconds: float
    content_type: str
    operation: str | None  # the provider's long-running operation, for support and resuming
    # Failed: why, and whether another pod may succeed where this one did not.
    reason: str
    message: str
    retryable: bool
    # Both: what the user is charged, a decimal string so no float ever rounds it.
    cost_usd: str


def read_result(message: str) -> WorkerResult | None:
    """The result in a termination message, or None if it holds none (a crash, a truncation)."""
    try:
        parsed = json.loads(message)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or "status" not in parsed:
        return None
    hints = get_type_hints(WorkerResult)
    known = {key: value for key, value in parsed.items() if key in hints}
    if not all(_is_instance(value, hints[key]) for key, value in known.items()):
        return None
    result: WorkerResult = known  # type: ignore[assignment]  # every key checked just above
    return result


def _is_instance(value: object, hint: object) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_is_instance(value, arg) for arg in get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:  # JSON writes 4.0 as 4 in some encoders
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(hint, type) and isinstance(value, hint)
