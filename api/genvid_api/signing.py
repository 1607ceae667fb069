"""V4 signed URLs for private previews, made at response time and never stored.

Two modes (settings.signing_mode):

* `local`: a key generated at startup signs (google.oauth2 service-account credentials from an
  in-memory RSA key), and URLs point at the storage emulator, so fetching them works on the
  local stack. Nothing is written to disk.
* `iam`: on GKE with Workload Identity there is no key file. The workload's own credentials
  (google.auth.default) are refreshed and IAM's signBlob signs for the service account
  (`roles/iam.serviceAccountTokenCreator` on itself), through
  `blob.generate_signed_url(version="v4", service_account_email=..., access_token=...)`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio
import anyio.to_thread
import google.auth
import google.auth.credentials
import google.auth.transport.requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]
from google.oauth2 import service_account

from genvid_api.config import Settings, SigningMode
from genvid_api.metrics import URL_CACHE_HITS, URLS_SIGNED

LOCAL_SIGNER_EMAIL = "genvid-local-signer@genvid-local.iam.gserviceaccount.com"
_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
IAM_CONCURRENCY = 16  # signBlob calls in flight per process


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: datetime


class UrlCache:
    """Reuses a signed URL while at least half its lifetime is left.

    Signing is the api's main CPU cost per feed page (two RSA signatures, or two IAM signBlob
    calls, per item); popular videos appear on every viewer's page. Every viewer of an object
    may see the same URL: it is only ever handed to someone allowed to see the object. Bounded,
    least recently used first out.
    """

    def __init__(self, ttl: timedelta, max_entries: int = 20_000) -> None:
        self._min_left = ttl / 2
        self._max_entries = max_entries
        self._urls: OrderedDict[tuple[str, str], SignedUrl] = OrderedDict()

    def _get(self, key: tuple[str, str], now: datetime) -> SignedUrl | None:
        url = self._urls.get(key)
        if url is None or url.expires_at - now < self._min_left:
            return None
        self._urls.move_to_end(key)
        return url

    def _put(self, key: tuple[str, str], url: SignedUrl) -> None:
        self._urls[key] = url
        self._urls.move_to_end(key)
        while len(self._urls) > self._max_entries:
            self._urls.popitem(last=False)

    async def through(
        self,
        objects: Sequence[tuple[str, str]],
        sign: Callable[[list[tuple[str, str]]], Awaitable[list[SignedUrl]]],
    ) -> list[SignedUrl]:
        """URLs for `objects`, signing (in one `sign` call) only those not cached."""
        now = datetime.now(UTC)
        found = [self._get(key, now) for key in objects]
        missing = [key for key, url in zip(objects, found, strict=True) if url is None]
        URL_CACHE_HITS.inc(len(objects) - len(missing))
        URLS_SIGNED.inc(len(missing))
        fresh = iter(await sign(missing) if missing else [])
        urls: list[SignedUrl] = []
        for key, url in zip(objects, found, strict=True):
            if url is None:
                url = next(fresh)
                self._put(key, url)
            urls.append(url)
        return urls


class UrlSigner(Protocol):
    async def sign(self, bucket: str, object_name: str) -> SignedUrl: ...

    async def sign_many(self, objects: Sequence[tuple[str, str]]) -> list[SignedUrl]:
        """URLs for (bucket, object) pairs, in order: one call per response, not per item."""
        ...


class _CachedSigner(ABC):
    """Both signers: URLs from the cache when they are fresh enough, the rest signed at once,
    each by the storage client with the arguments of the signer's mode."""

    def __init__(self, ttl: timedelta, client: storage.Client) -> None:
        self._ttl = ttl
        self._cache = UrlCache(ttl)
        self._client = client

    @abstractmethod
    async def _sign_uncached(self, objects: list[tuple[str, str]]) -> list[SignedUrl]: ...

    @abstractmethod
    def _signing_options(self) -> dict[str, Any]:
        """What signs: `generate_signed_url`'s arguments that differ between the two modes."""

    def _sign_blocking(self, bucket: str, object_name: str) -> SignedUrl:
        options = self._signing_options()
        expires_at = datetime.now(UTC) + self._ttl
        blob = self._client.bucket(bucket).blob(object_name)
        url = blob.generate_signed_url(version="v4", expiration=self._ttl, method="GET", **options)
        return SignedUrl(url=url, expires_at=expires_at)

    async def sign(self, bucket: str, object_name: str) -> SignedUrl:
        return (await self.sign_many([(bucket, object_name)]))[0]

    async def sign_many(self, objects: Sequence[tuple[str, str]]) -> list[SignedUrl]:
        return await self._cache.through(objects, self._sign_uncached)


def _credentials_for(key: rsa.RSAPrivateKey) -> service_account.Credentials:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info: dict[str, Any] = {
        "type": "service_account",
        "project_id": "genvid-local",
        "private_key_id": "local",
        "private_key": pem,
        "client_email": LOCAL_SIGNER_EMAIL,
        "client_id": "0",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    credentials: service_account.Credentials = (
        service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
    )
    return credentials


class LocalSigner(_CachedSigner):
    """Signs with a key generated in memory; URLs point at `endpoint` (the emulator)."""

    def __init__(self, endpoint: str, ttl: timedelta) -> None:
        client = storage.Client(
            project="genvid-local",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": endpoint},
        )
        super().__init__(ttl, client)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._credentials = _credentials_for(self._key)
        self._endpoint = endpoint.rstrip("/")

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """What a verifier (Cloud Storage, or a test) checks the signatures with."""
        return self._key.public_key()

    def _signing_options(self) -> dict[str, Any]:
        return {"credentials": self._credentials, "api_access_endpoint": self._endpoint}

    def _sign_all(self, objects: Sequence[tuple[str, str]]) -> list[SignedUrl]:
        return [self._sign_blocking(bucket, name) for bucket, name in objects]

    async def _sign_uncached(self, objects: list[tuple[str, str]]) -> list[SignedUrl]:
        """~0.25 ms of RSA per URL (a feed page of 20 items, 40 URLs: ~10 ms of CPU), in a
        worker thread, the whole batch in one hop: on the event loop it would stall every
        other request and SSE stream of the process meanwhile."""
        return await anyio.to_thread.run_sync(self._sign_all, objects)


class IamSigner(_CachedSigner):
    """Signs through IAM signBlob with the workload's own (or a configured) service account."""

    def __init__(self, ttl: timedelta, service_account_email: str | None) -> None:
        credentials, project = google.auth.default(scopes=_SCOPES)
        super().__init__(ttl, storage.Client(project=project, credentials=credentials))
        self._credentials: google.auth.credentials.Credentials = credentials
        self._email = service_account_email
        self._lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(IAM_CONCURRENCY)

    def _token_and_email(self) -> tuple[str, str]:
        with self._lock:
            if not self._credentials.valid:
                self._credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
            email = self._email or getattr(self._credentials, "service_account_email", None)
            if not email:
                raise RuntimeError("set GENVID_SIGNING_SERVICE_ACCOUNT: credentials name none")
            return str(self._credentials.token), str(email)

    def _signing_options(self) -> dict[str, Any]:
        token, email = self._token_and_email()
        return {"service_account_email": email, "access_token": token}

    async def _sign_uncached(self, objects: list[tuple[str, str]]) -> list[SignedUrl]:
        """signBlob has no batch form: one HTTP call per URL, made concurrently (at most
        IAM_CONCURRENCY at a time) after one credential refresh (HTTP calls, so off the event
        loop), so a page costs about one round trip of latency."""
        await anyio.to_thread.run_sync(self._token_and_email)  # refresh once, not per thread
        results: list[SignedUrl | None] = [None] * len(objects)

        async def one(index: int, bucket: str, name: str) -> None:
            results[index] = await anyio.to_thread.run_sync(
                self._sign_blocking, bucket, name, limiter=self._limiter
            )

        async with anyio.create_task_group() as group:
            for index, (bucket, name) in enumerate(objects):
                group.start_soon(one, index, bucket, name)
        return [result for result in results if result is not None]


def create_signer(settings: Settings) -> UrlSigner:
    ttl = timedelta(seconds=settings.signed_url_ttl_seconds)
    if settings.signing_mode is SigningMode.IAM:
        return IamSigner(ttl, settings.signing_service_account)
    endpoint = settings.storage_emulator_host or "http://127.0.0.1:4443"
    if "://" not in endpoint:
        endpoint = f"http://{endpoint}"
    return LocalSigner(endpoint, ttl)
