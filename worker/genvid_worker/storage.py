"""The bucket, seen from the worker: object names, streaming writes, server-side copies and
ranged reads.

Memory stays bounded whatever the video's size: writes go through a resumable upload that
buffers at most one chunk, copies happen inside Cloud Storage (`rewrite`), and reads fetch
ranges on demand. Names carry the generation id, so its objects share one prefix (one IAM
condition, one lifecycle rule), and a timestamp, so a retried pod never overwrites what an
earlier attempt may already have reported.

Storage failures are classified once, here: throttling, 5xx and network trouble are
retryable, everything else (a missing bucket, a denied permission) is not.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

import google.auth.exceptions
import requests
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]
from google.cloud.storage import exceptions as storage_exceptions
from google.cloud.storage.retry import DEFAULT_RETRY

from genvid_contracts.worker import Reason
from genvid_worker.config import Settings, storage_project
from genvid_worker.result import WorkerError, permanent, retryable

PREFIX = "previews"
OPERATION_RECORD = "operation.json"
_RETRYABLE_HTTP = frozenset({408, 429, 500, 502, 503, 504})
_GS_URI = re.compile(r"^gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/(?P<name>.+)$")

Bucket = Any  # google.cloud.storage ships no type information.
Blob = Any


def timestamp(now: datetime) -> str:
    """UTC, basic ISO 8601 (20261124T080102Z): sorts by time and is safe in object names."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class Names:
    """Every object one job touches, all under `previews/{job_id}/`."""

    prefix: str
    video: str
    poster: str

    @property
    def operation_record(self) -> str:
        return f"{self.prefix}{OPERATION_RECORD}"

    @property
    def veo_output_prefix(self) -> str:
        return f"{self.prefix}veo/"


def object_names(job_id: str, now: datetime) -> Names:
    prefix = f"{PREFIX}/{job_id}/"
    stamp = timestamp(now)
    return Names(
        prefix=prefix,
        video=f"{prefix}preview_{stamp}.mp4",
        poster=f"{prefix}poster_{stamp}.jpg",
    )


def gs_uri(bucket: str, name: str) -> str:
    return f"gs://{bucket}/{name}"


def parse_gs_uri(uri: str) -> tuple[str, str]:
    match = _GS_URI.match(uri)
    if match is None:
        raise ValueError(f"not a gs://bucket/object URI: {uri!r}")
    return match["bucket"], match["name"]


def make_client(settings: Settings) -> Any:
    """Anonymous against the emulator; application default credentials everywhere else."""
    if settings.storage_emulator_host:
        endpoint = settings.storage_emulator_host
        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        return storage.Client(
            project=storage_project(settings),
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": endpoint},
        )
    return storage.Client(project=storage_project(settings))


class CountingWriter(io.RawIOBase):
    """A write-only, non-seekable view of a stream that counts what went through it.

    Saying "not seekable" out loud makes the muxer write a fragmented MP4 front to back
    instead of trying to seek back and patch its header.
    """

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner
        self.bytes_written = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._inner.write(view)
        self.bytes_written += len(view)
        return len(view)


@dataclass(frozen=True)
class Store:
    """One bucket, with the retry budget and chunk sizes every call uses.

    The client library retries transient errors itself; `retry` caps how long it may keep
    trying before the worker gives up and exits retryable, which the Job then retries later.
    """

    bucket: Bucket
    retry: Any
    upload_chunk_bytes: int
    read_chunk_bytes: int

    @property
    def name(self) -> str:
        return str(self.bucket.name)

    def blob(self, name: str) -> Blob:
        return self.bucket.blob(name)

    @contextlib.contextmanager
    def streaming_writer(self, name: str, content_type: str) -> Iterator[CountingWriter]:
        """A resumable upload holding at most one chunk in memory.

        The object appears only when the block exits normally; on an exception the upload
        session is cancelled, so a half-written video never exists under its final name.
        """
        with self.blob(name).open(
            "wb",
            chunk_size=self.upload_chunk_bytes,
            content_type=content_type,
            ignore_flush=True,
            retry=self.retry,
        ) as upload:
            yield CountingWriter(cast(BinaryIO, upload))

    def upload_bytes(self, name: str, data: bytes, content_type: str) -> Blob:
        """For small objects (posters, records) that are whole in memory anyway."""
        blob = self.blob(name)
        blob.upload_from_string(data, content_type=content_type, retry=self.retry)
        return blob

    def server_side_copy(self, source_name: str, dest_name: str, content_type: str) -> Blob:
        """Copy inside Cloud Storage, no bytes through the worker.

        `rewrite` rather than `copy_blob`: it returns a token instead of timing out when a large
        copy between locations or storage classes needs several calls.
        """
        source = self.blob(source_name)
        dest = self.blob(dest_name)
        dest.content_type = content_type
        token, _, _ = dest.rewrite(source, retry=self.retry)
        while token is not None:
            token, _, _ = dest.rewrite(source, token=token, retry=self.retry)
        dest.reload(retry=self.retry)
        return dest

    def ranged_reader(self, blob: Blob) -> BinaryIO:
        """A seekable reader fetching one chunk-sized range at a time (MP4 needs seeking)."""
        return cast(BinaryIO, blob.open("rb", chunk_size=self.read_chunk_bytes, retry=self.retry))

    def read_json(self, name: str) -> dict[str, Any] | None:
        try:
            text = self.blob(name).download_as_text(retry=self.retry)
        except api_exceptions.NotFound:
            return None
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError(f"{name} holds {type(document).__name__}, not an object")
        return document

    def create_json(self, name: str, document: dict[str, Any]) -> bool:
        """Write `document` unless the object exists; False if it did (someone was first)."""
        try:
            self.blob(name).upload_from_string(
                json.dumps(document, indent=2),
                content_type="application/json",
                if_generation_match=0,
                retry=self.retry,
            )
        except api_exceptions.PreconditionFailed:
            return False
        return True

    def delete_if_exists(self, name: str) -> None:
        with contextlib.suppress(api_exceptions.NotFound):
            self.blob(name).delete(retry=self.retry)


def open_store(settings: Settings) -> Store:
    return Store(
        bucket=make_client(settings).bucket(settings.bucket),
        retry=DEFAULT_RETRY.with_timeout(settings.storage_retry_seconds),
        upload_chunk_bytes=settings.upload_chunk_bytes,
        read_chunk_bytes=settings.read_chunk_bytes,
    )


def classify_storage_error(exc: BaseException) -> WorkerError | None:
    """The storage failures the worker knows, as retryable or permanent; None for the rest."""
    status: int | None = None
    if isinstance(exc, api_exceptions.RetryError):
        # The client's own retries ran out on errors it deemed transient.
        return retryable(Reason.STORAGE_UNAVAILABLE, f"Cloud Storage kept failing: {exc}")
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        status = exc.code
    elif isinstance(exc, storage_exceptions.InvalidResponse):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    elif isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | requests.exceptions.ChunkedEncodingError
        | google.auth.exceptions.TransportError
        | storage_exceptions.DataCorruption
        | ConnectionError
        | TimeoutError,
    ):
        return retryable(Reason.STORAGE_UNAVAILABLE, f"Cloud Storage unreachable: {exc}")
    else:
        return None
    if status in _RETRYABLE_HTTP:
        return retryable(Reason.STORAGE_UNAVAILABLE, f"Cloud Storage answered {status}: {exc}")
    return permanent(Reason.STORAGE_ERROR, f"Cloud Storage refused the request: {exc}")


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the storage failures `classify_storage_error` knows into `WorkerError`s."""
    try:
        yield
    except WorkerError:
        raise
    except Exception as exc:
        classified = classify_storage_error(exc)
        if classified is None:
            raise
        raise classified from exc
