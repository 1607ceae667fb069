"""The worker's result as it stored it in the bucket, for a generation whose Job or pods are
gone (deleted by hand, by their TTL, or by an eviction) before the operator read them.

The termination message is the first report and lives only as long as the pod; the worker
also writes the same `WorkerResult` document to `result_object(job_id)`. The operator only
reads that object (read-only access to the bucket) and never trusts it beyond the contract's
keys (`read_result`). The storage client is synchronous: its calls run in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]

from genvid_contracts.worker import WorkerResult, read_result, result_object
from genvid_operator.config import Settings

log = logging.getLogger(__name__)

_EMULATOR_PROJECT = "genvid-local"


class StoredResults:
    """The client is made on first use: credentials are looked up only when a result is
    needed, so an operator without them still starts (and says so when one is needed)."""

    def __init__(self, settings: Settings, bucket: str) -> None:
        self._settings = settings
        self._bucket_name = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> StoredResults | None:
        """None without a bucket: a Job gone before it was read is then `JobLost`."""
        return cls(settings, settings.bucket) if settings.bucket else None

    @functools.cached_property
    def _bucket(self) -> Any:
        settings = self._settings
        if settings.storage_emulator_host:
            endpoint = settings.storage_emulator_host
            client = storage.Client(
                project=settings.storage_project or _EMULATOR_PROJECT,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={
                    "api_endpoint": endpoint if "://" in endpoint else f"http://{endpoint}"
                },
            )
        else:
            client = storage.Client(project=settings.storage_project)
        return client.bucket(self._bucket_name)

    async def read(self, job_id: str) -> WorkerResult | None:
        """The stored result, None if there is none (the worker never finished or crashed).
        A storage error is raised: the pass fails and is retried, nothing is decided on it."""
        return await asyncio.to_thread(self._read, job_id)

    def _read(self, job_id: str) -> WorkerResult | None:
        try:
            text = self._bucket.blob(result_object(job_id)).download_as_text(timeout=10)
        except api_exceptions.NotFound:
            return None
        result = read_result(text)
        if result is None:
            log.warning("%s: its stored result is not a worker result", job_id)
        return result
