"""The few apiserver calls the operator makes: read and patch VideoGenerations, create, read
and delete their Jobs, list their pods. Plain dicts come back, as `phases.decide` takes them.

The requests are plain JSON over one aiohttp session (`KubeApi`): the generated client's model
classes, its per-call parameter handling and its proxy and netrc lookups (a thread hop per
request) cost the operator more CPU than the request itself. kubernetes_asyncio still reads the
credentials (in-cluster or the kubeconfig) and refreshes a token that expires. Like kopf's own
requests, these ignore proxy variables and ~/.netrc; a kubeconfig's `proxy-url` is used."""

from __future__ import annotations

import json
import ssl
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from genvid_contracts.resource import (
    GROUP,
    PLURAL,
    VERSION,
    VideoGeneration,
    VideoGenerationStatus,
)
from genvid_operator.jobspec import GENERATION_LABEL, job_name

Json = dict[str, Any]
_MERGE_PATCH = "application/merge-patch+json"
_JSON = "application/json"
# A list of the objects' metadata only (no spec, no status): what a list of names needs.
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# Objects per page of a list that may be long (every VideoGeneration of the namespace).
_PAGE = 500
# A request of ours that takes longer is lost (a connection that died without a reset): the
# pass fails and the resync repeats it, rather than its generation's lock being held forever.
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)


class KubeApi:
    """JSON requests to the apiserver; a failure raises `ApiException` with the status, as the
    generated client does. At most `connections` requests are in flight (the rest wait)."""

    def __init__(self, configuration: client.Configuration, connections: int) -> None:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._configuration = configuration
        self._host = configuration.host.rstrip("/")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ssl=context),
            timeout=_REQUEST_TIMEOUT,
            read_bufsize=2**21,  # large objects: etcd takes requests up to 1.5 MiB
        )

    async def request(self, method: str, path: str, body: object = None, **options: Any) -> Json:
        """The response's object; `options` as `send` takes them."""
        document: Json = json.loads(await self.send(method, path, body, **options))
        return document

    async def send(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = _JSON,
        accept: str = _JSON,
    ) -> bytes:
        """The response's bytes, unparsed: for a write whose response is not read (a created
        Job's object is the largest JSON the operator would parse per generation)."""
        headers = {"Accept": accept}
        for auth in (await self._configuration.auth_settings()).values():
            headers[auth["key"]] = auth["value"]  # a refreshed token, where it expires
        if body is not None:
            headers["Content-Type"] = content_type
        async with self._session.request(
            method,
            self._host + path,
            params=params,
            # Bytes: aiohttp takes them as they are, where a str is a payload to encode.
            data=None if body is None else json.dumps(body).encode(),
            headers=headers,
            proxy=self._configuration.proxy,
            server_hostname=self._configuration.tls_server_name,
        ) as response:
            text = await response.read()
            if not 200 <= response.status <= 299:
                raise ApiException(status=response.status, reason=text.decode(errors="replace"))
        return text

    async def close(self) -> None:
        await self._session.close()


async def api_client(connections: int) -> KubeApi:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG); at
    most `connections` requests in flight at once (the rest wait for a free connection)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        await config.load_kube_config()
    return KubeApi(client.Configuration.get_default_copy(), connections)


class Conflict(Exception):
    """The object changed since it was read: read it again and decide again."""


def _generations(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


def _jobs(namespace: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs"


class Cluster:
    def __init__(self, api: KubeApi) -> None:
        self._api = api

    async def get_generation(self, namespace: str, name: str) -> VideoGeneration | None:
        try:
            obj: Json = await self._api.request("GET", f"{_generations(namespace)}/{name}")
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return obj  # type: ignore[return-value]

    async def patch_status(
        self, vg: VideoGeneration, new: VideoGenerationStatus
    ) -> VideoGeneration:
        """Merge-patch the status subresource of `vg` to `new`, nulling keys that `new` dropped.

        Only if the object is still the version `new` was computed from: the patch carries its
        resourceVersion, so a second writer (another operator, a stuck old pod) that decided
        from an older version gets `Conflict` instead of a second transition with one eventSeq.
        """
        meta = vg["metadata"]
        old: VideoGenerationStatus = vg.get("status") or {}
        body = {
            "metadata": {"resourceVersion": meta["resourceVersion"]},
            "status": {**{key: None for key in old if key not in new}, **new},
        }
        path = f"{_generations(meta['namespace'])}/{meta['name']}/status"
        try:
            obj: Json = await self._api.request("PATCH", path, body, content_type=_MERGE_PATCH)
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"{meta['namespace']}/{meta['name']} changed meanwhile") from error
            raise
        return obj  # type: ignore[return-value]

    async def get_job(self, namespace: str, generation: str) -> Json | None:
        try:
            return await self._api.request("GET", f"{_jobs(namespace)}/{job_name(generation)}")
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def create_job(self, body: Json) -> bool:
        """Create the Job; False if it already exists (a retried or restarted reconcile)."""
        try:
            await self._api.send("POST", _jobs(body["metadata"]["namespace"]), body)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def set_job_ttl(self, namespace: str, generation: str, seconds: int) -> None:
        """Let the TTL controller delete the finished Job `seconds` after it finished."""
        body = {"spec": {"ttlSecondsAfterFinished": seconds}}
        path = f"{_jobs(namespace)}/{job_name(generation)}"
        try:
            await self._api.send("PATCH", path, body, content_type=_MERGE_PATCH)
        except ApiException as error:
            if error.status != 404:
                raise

    async def delete_job(self, namespace: str, generation: str) -> None:
        """Delete the Job and, in the background, its pods: the kubelet kills the worker."""
        path = f"{_jobs(namespace)}/{job_name(generation)}"
        try:
            await self._api.send("DELETE", path, params={"propagationPolicy": "Background"})
        except ApiException as error:
            if error.status != 404:
                raise

    async def list_pods(self, namespace: str, generation: str) -> list[Json]:
        pods = await self._api.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            params={"labelSelector": f"{GENERATION_LABEL}={generation}"},
        )
        items: list[Json] = pods.get("items") or []
        return items

    async def generation_names(self, namespace: str, page: int = _PAGE) -> set[str]:
        """The names of every VideoGeneration in the namespace. It runs every resync interval
        while generations are active: their metadata only, a page at a time, so thousands of
        finished resources never sit in memory at once."""
        names: set[str] = set()
        params = {"limit": str(page)}
        while True:
            listed = await self._api.request(
                "GET", _generations(namespace), params=params, accept=_METADATA_LIST
            )
            names.update(item["metadata"]["name"] for item in listed.get("items") or [])
            token = (listed.get("metadata") or {}).get("continue")
            if not token:
                return names
            params = {"limit": str(page), "continue": token}

    async def delete_generation(
        self, namespace: str, name: str, uid: str, resource_version: str
    ) -> bool:
        """Delete the VideoGeneration only if it is still that object at that version (a
        precondition, so a version judged due is the one deleted); False if gone or changed."""
        options = {"preconditions": {"uid": uid, "resourceVersion": resource_version}}
        try:
            await self._api.send("DELETE", f"{_generations(namespace)}/{name}", options)
        except ApiException as error:
            if error.status in (404, 409):
                return False
            raise
        return True

    async def close(self) -> None:
        await self._api.close()
