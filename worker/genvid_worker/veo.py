"""The Veo provider: one paid operation per generation, written by Veo straight into the bucket.

Through the google-genai SDK in Vertex AI mode (the only mode in which SDK 3.x generates
videos), with `output_gcs_uri` so the video never passes through the worker: Veo writes it under
`previews/{job_id}/veo/`, the worker copies it server-side to its canonical name and reads just
enough of it (ranged reads) to make a poster.

Every Veo call costs money, so the operation's name is recorded in the bucket before the first
poll, and a retried pod resumes that operation instead of starting a second one. The poll
deadline runs from the operation's start as recorded, so retries do not extend it. An
operation that ended in a retryable error is forgotten (its record deleted), so the next
attempt starts afresh rather than resuming a failure.

Failure classes (see `classify_api_error`, `classify_operation_error`, `video_object`):
throttling, 5xx, timeouts and connection errors, and operation errors with gRPC codes 4, 8, 10,
13, 14 are retryable; an invalid request is permanent; a safety-filtered result is permanent
with its own reason (`SafetyFiltered`) and is not charged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import av
import google.auth.exceptions
import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from genvid_contracts.worker import Reason, WorkerResult
from genvid_worker import log
from genvid_worker.config import Settings
from genvid_worker.poster import jpeg_bytes, probe
from genvid_worker.request import GenerationRequest
from genvid_worker.result import (
    CONTENT_TYPE_JPEG,
    CONTENT_TYPE_MP4,
    WorkerError,
    cost_usd,
    decimal_text,
    permanent,
    reported_seconds,
    retryable,
)
from genvid_worker.storage import Names, Store, gs_uri, parse_gs_uri

PROVIDER = "veo"
_T = TypeVar("_T")
# google.rpc.Code values worth another attempt: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
# ABORTED, INTERNAL, UNAVAILABLE.
RETRYABLE_OPERATION_CODES = frozenset({4, 8, 10, 13, 14})
_RESOURCE_EXHAUSTED = 8
# INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE: the same request would fail again.
_INVALID_REQUEST_CODES = frozenset({3, 9, 11})


@dataclass(frozen=True)
class PollPolicy:
    interval_seconds: float
    deadline_seconds: float
    max_consecutive_errors: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PollPolicy:
        return cls(
            interval_seconds=settings.poll_interval_seconds,
            deadline_seconds=settings.poll_deadline_seconds,
            max_consecutive_errors=settings.poll_max_consecutive_errors,
        )


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Network failures of whichever HTTP client the SDK uses: google-genai 3.x sends through
    httpx2 (a fork of httpx whose exceptions are not httpx's), older releases through httpx."""
    errors: list[type[BaseException]] = [TimeoutError, ConnectionError, httpx.TransportError]
    try:
        import httpx2
    except ImportError:  # pragma: no cover - google-genai < 3
        pass
    else:
        errors.append(httpx2.TransportError)
    return tuple(errors)


_TRANSPORT_ERRORS = _transport_errors()


# --- pure parts ---------------------------------------------------------------------------


def generation_config(
    request: GenerationRequest, output_gcs_uri: str
) -> types.GenerateVideosConfig:
    return types.GenerateVideosConfig(
        number_of_videos=1,
        duration_seconds=request.duration_seconds,
        aspect_ratio=request.aspect_ratio,
        negative_prompt=request.negative_prompt,
        seed=request.seed,
        output_gcs_uri=output_gcs_uri,
    )


def classify_api_error(exc: BaseException) -> WorkerError | None:
    """An exception from an SDK call as a classified failure; None if it is not an API one."""
    if isinstance(exc, genai_errors.APIError):
        detail = f"Veo answered HTTP {exc.code} {exc.status or ''}: {exc.message or exc}".strip()
        if exc.code == 429:
            return retryable(Reason.RATE_LIMITED, detail)
        if exc.code == 408 or exc.code >= 500:
            return retryable(Reason.PROVIDER_UNAVAILABLE, detail)
        if exc.code in (401, 403):
            return permanent(Reason.CONFIGURATION_ERROR, detail)
        if exc.code == 400:
            return permanent(Reason.INVALID_REQUEST, detail)
        return permanent(Reason.PROVIDER_ERROR, detail)
    if isinstance(exc, _TRANSPORT_ERRORS):
        return retryable(Reason.PROVIDER_UNAVAILABLE, f"Veo unreachable: {type(exc).__name__}")
    if isinstance(exc, google.auth.exceptions.DefaultCredentialsError):
        return permanent(Reason.CONFIGURATION_ERROR, f"No Vertex AI credentials: {exc}")
    if isinstance(exc, google.auth.exceptions.RefreshError | google.auth.exceptions.TransportError):
        return retryable(Reason.PROVIDER_UNAVAILABLE, f"Could not obtain a Vertex AI token: {exc}")
    return None


def classify_operation_error(error: dict[str, Any]) -> WorkerError:
    """A finished operation's `error` (a google.rpc.Status) as a classified failure."""
    code = error.get("code")
    detail = f"Veo operation failed (code {code}): {error.get('message', 'no message')}"
    if code == _RESOURCE_EXHAUSTED:
        return retryable(Reason.RATE_LIMITED, detail)
    if code in RETRYABLE_OPERATION_CODES:
        return retryable(Reason.PROVIDER_UNAVAILABLE, detail)
    if code in _INVALID_REQUEST_CODES:
        return permanent(Reason.INVALID_REQUEST, detail)
    return permanent(Reason.PROVIDER_ERROR, detail)


def video_object(operation: types.GenerateVideosOperation, bucket: str) -> str:
    """The object name of a finished operation's video in `bucket`, or why there is none."""
    if operation.error:
        raise classify_operation_error(operation.error)
    response = operation.response or operation.result
    if response is None:
        raise permanent(Reason.PROVIDER_ERROR, "Veo finished without a response")
    videos = [v.video for v in response.generated_videos or [] if v.video is not None]
    if not videos and (response.rai_media_filtered_count or 0) > 0:
        reasons = "; ".join(response.rai_media_filtered_reasons or []) or "no reason given"
        raise permanent(
            Reason.SAFETY_FILTERED, f"The video was blocked by Veo's safety filters: {reasons}"
        )
    if not videos:
        raise permanent(Reason.PROVIDER_ERROR, "Veo finished without a video")
    video = videos[0]
    if not video.uri:
        # Inline bytes would have to be uploaded by the worker, which output_gcs_uri avoids.
        raise permanent(Reason.PROVIDER_ERROR, "Veo returned no gcsUri although one was requested")
    try:
        video_bucket, name = parse_gs_uri(video.uri)
    except ValueError as exc:
        raise permanent(Reason.PROVIDER_ERROR, str(exc)) from exc
    if video_bucket != bucket:
        raise permanent(Reason.PROVIDER_ERROR, f"Veo wrote outside the bucket: {video.uri}")
    return name


def operation_record(operation_name: str, model: str, output: str, now: float) -> dict[str, Any]:
    return {
        "operation": operation_name,
        "model": model,
        "output_gcs_uri": output,
        "started_at": datetime.fromtimestamp(now, UTC).isoformat(),
    }


def record_started_at(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(record["started_at"])).timestamp()


# --- the SDK ------------------------------------------------------------------------------


def build_client(settings: Settings) -> genai.Client:
    """Vertex AI mode: project and location with ADC if configured, else the API key."""
    http_options = types.HttpOptions(
        base_url=settings.veo_base_url,
        timeout=int(settings.veo_request_timeout_seconds * 1000),
    )
    if settings.google_cloud_project and settings.google_cloud_location:
        return genai.Client(
            vertexai=True,
            project=settings.google_cloud_project,
            location=settings.google_cloud_location,
            http_options=http_options,
        )
    if settings.google_api_key:
        return genai.Client(
            vertexai=True, api_key=settings.google_api_key, http_options=http_options
        )
    raise permanent(
        Reason.CONFIGURATION_ERROR,
        "the veo provider needs GOOGLE_API_KEY, or GOOGLE_CLOUD_PROJECT and "
        "GOOGLE_CLOUD_LOCATION with application default credentials",
    )


def _call(what: str, call: Callable[[], _T]) -> _T:
    try:
        return call()
    except WorkerError:
        raise
    except Exception as exc:
        classified = classify_api_error(exc)
        if classified is None:
            raise
        log.warning("veo.call_failed", call=what, reason=str(classified.reason), error=str(exc))
        raise classified from exc


@dataclass
class Veo:
    """One generation's conversation with Veo; `clock` and `sleep` are injectable for tests."""

    client: genai.Client
    store: Store
    names: Names
    policy: PollPolicy
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def run(self, request: GenerationRequest, *, model: str) -> WorkerResult:
        """`model` is the request's, or the deployment's default when it names none."""
        operation, started_at = self.start_or_resume(request, model)
        done = self.wait(operation, started_at)
        source_name = video_object(done, self.store.name)
        log.info("veo.done", operation=done.name, video=gs_uri(self.store.name, source_name))
        return self.publish(request, model, done.name or "", source_name)

    def start_or_resume(
        self, request: GenerationRequest, model: str
    ) -> tuple[types.GenerateVideosOperation, float]:
        record = self.store.read_json(self.names.operation_record)
        if record is not None:
            return self._resume(record)
        output = gs_uri(self.store.name, self.names.veo_output_prefix)
        operation = _call(
            "generate_videos",
            lambda: self.client.models.generate_videos(
                model=model,
                source=types.GenerateVideosSource(prompt=request.prompt),
                config=generation_config(request, output),
            ),
        )
        if not operation.name:
            raise permanent(Reason.PROVIDER_ERROR, "Veo started an operation without a name")
        started_at = self.clock()
        document = operation_record(operation.name, model, output, started_at)
        if not self.store.create_json(self.names.operation_record, document):
            # Another pod of this generation recorded its operation first: follow that one.
            theirs = self.store.read_json(self.names.operation_record)
            if theirs is not None:
                log.warning("veo.concurrent_start", ours=operation.name)
                return self._resume(theirs)
        log.info("veo.started", operation=operation.name, output=output)
        return operation, started_at

    def _resume(self, record: dict[str, Any]) -> tuple[types.GenerateVideosOperation, float]:
        try:
            name = str(record["operation"])
            started_at = record_started_at(record)
        except (KeyError, ValueError) as exc:
            raise permanent(
                Reason.INTERNAL_ERROR, f"unreadable {self.names.operation_record}: {exc}"
            ) from exc
        log.info("veo.resumed", operation=name, started_at=record["started_at"])
        return types.GenerateVideosOperation.model_validate({"name": name}), started_at

    def wait(
        self, operation: types.GenerateVideosOperation, started_at: float
    ) -> types.GenerateVideosOperation:
        """Poll until done, tolerating a few transient errors in a row, up to the deadline."""
        policy = self.policy
        consecutive_errors = 0
        # A resumed operation (done unknown) is fetched at once; a fresh one after one interval.
        pause = 0.0 if operation.done is None else policy.interval_seconds
        polls = 0
        while not operation.done:
            remaining = started_at + policy.deadline_seconds - self.clock()
            if remaining <= 0:
                raise permanent(
                    Reason.PROVIDER_TIMEOUT,
                    f"Veo did not finish within {policy.deadline_seconds:g}s",
                )
            self.sleep(min(pause, remaining))
            pause = policy.interval_seconds
            try:
                operation = self.client.operations.get(operation)
            except Exception as exc:
                failure = classify_api_error(exc)
                if failure is None:  # not the API's doing: a bug, an interruption
                    raise
                if isinstance(exc, genai_errors.ClientError) and exc.code == 404:
                    self.store.delete_if_exists(self.names.operation_record)
                    raise retryable(
                        Reason.OPERATION_LOST, f"Veo no longer knows {operation.name}"
                    ) from exc
                consecutive_errors += 1
                log.warning(
                    "veo.poll_failed",
                    reason=str(failure.reason),
                    consecutive=consecutive_errors,
                    error=str(exc),
                )
                if not failure.retryable or consecutive_errors > policy.max_consecutive_errors:
                    raise failure from exc
                continue
            consecutive_errors = 0
            polls += 1
            if polls % 6 == 0 or operation.done:
                log.info("veo.polled", operation=operation.name, done=bool(operation.done))
        if operation.error:
            failure = classify_operation_error(operation.error)
            if failure.retryable:
                # Resuming a failed operation would fail again: let the next attempt start over.
                self.store.delete_if_exists(self.names.operation_record)
            raise failure
        return operation

    def publish(
        self, request: GenerationRequest, model: str, operation_name: str, source_name: str
    ) -> WorkerResult:
        """Copy to the canonical name inside the bucket, then poster and facts from ranged reads."""
        video = self.store.server_side_copy(source_name, self.names.video, CONTENT_TYPE_MP4)
        log.info("video.copied", source=source_name, object=self.names.video, size=video.size)
        try:
            with self.store.ranged_reader(video) as reader:
                facts = probe(reader)
        except (av.FFmpegError, ValueError) as exc:
            raise permanent(Reason.PROVIDER_ERROR, f"Veo's video cannot be decoded: {exc}") from exc
        poster = jpeg_bytes(facts.first_frame)
        self.store.upload_bytes(self.names.poster, poster, CONTENT_TYPE_JPEG)
        log.info("poster.uploaded", object=self.names.poster, codec=facts.codec)
        duration = facts.duration_seconds or float(request.duration_seconds)
        return WorkerResult(
            status="succeeded",
            provider=PROVIDER,
            model=model,
            bucket=self.store.name,
            object=self.names.video,
            poster_object=self.names.poster,
            size_bytes=int(video.size),
            duration_seconds=reported_seconds(duration),
            content_type=CONTENT_TYPE_MP4,
            cost_usd=decimal_text(cost_usd(request.price_usd_per_second, request.duration_seconds)),
            operation=operation_name,
        )
