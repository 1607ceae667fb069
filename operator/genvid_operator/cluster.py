"""The few apiserver calls the operator makes: read and patch VideoGenerations, create, read
and delete their Jobs, list their pods. Plain dicts come back, as `phases.decide` takes them.

Job and pod responses are read as plain JSON (`_preload_content=False`): the client's model
classes would cost more of the operator's CPU than the request itself, only to be turned back
into dicts."""

from __future__ import annotations

import json
from typing import Any

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


async def api_client(connections: int) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG); at
    most `connections` requests in flight at once (the rest wait for a free connection)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        await config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


class Conflict(Exception):
    """The object changed since it was read: read it again and decide again."""


class Cluster:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._batch = client.BatchV1Api(api)
        self._core = client.CoreV1Api(api)

    async def get_generation(self, namespace: str, name: str) -> VideoGeneration | None:
        try:
            obj: VideoGeneration = await self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return obj

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
        try:
            obj: VideoGeneration = await self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                meta["name"],
                body,
                _content_type=_MERGE_PATCH,
            )
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"{meta['namespace']}/{meta['name']} changed meanwhile") from error
            raise
        return obj

    async def get_job(self, namespace: str, generation: str) -> Json | None:
        try:
            return await _plain(
                self._batch.read_namespaced_job(
                    job_name(generation), namespace, _preload_content=False
                )
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def create_job(self, body: Json) -> bool:
        """Create the Job; False if it already exists (a retried or restarted reconcile)."""
        try:
            await _plain(
                self._batch.create_namespaced_job(
                    body["metadata"]["namespace"], body, _preload_content=False
                )
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    async def set_job_ttl(self, namespace: str, generation: str, seconds: int) -> None:
        """Let the TTL controller delete the finished Job `seconds` after it finished."""
        body = {"spec": {"ttlSecondsAfterFinished": seconds}}
        try:
            await _plain(
                self._batch.patch_namespaced_job(
                    job_name(generation),
                    namespace,
                    body,
                    _content_type=_MERGE_PATCH,
                    _preload_content=False,
                )
            )
        except ApiException as error:
            if error.status != 404:
                raise

    async def delete_job(self, namespace: str, generation: str) -> None:
        """Delete the Job and, in the background, its pods: the kubelet kills the worker."""
        try:
            await _plain(
                self._batch.delete_namespaced_job(
                    job_name(generation),
                    namespace,
                    propagation_policy="Background",
                    _preload_content=False,
                )
            )
        except ApiException as error:
            if error.status != 404:
                raise

    async def list_pods(self, namespace: str, generation: str) -> list[Json]:
        pods = await _plain(
            self._core.list_namespaced_pod(
                namespace,
                label_selector=f"{GENERATION_LABEL}={generation}",
                _preload_content=False,
            )
        )
        items: list[Json] = pods.get("items") or []
        return items

    async def generation_names(self, namespace: str) -> set[str]:
        """The names of every VideoGeneration in the namespace (metadata only is used)."""
        listed = await self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        return {item["metadata"]["name"] for item in listed.get("items", [])}

    async def delete_generation(
        self, namespace: str, name: str, uid: str, resource_version: str
    ) -> bool:
        """Delete the VideoGeneration only if it is still that object at that version (a
        precondition, so a version judged due is the one deleted); False if gone or changed."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid, resource_version=resource_version)
        )
        try:
            await self._custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, body=options
            )
        except ApiException as error:
            if error.status in (404, 409):
                return False
            raise
        return True

    async def close(self) -> None:
        await self._api.close()


async def _plain(request: Any) -> Json:
    """The JSON of a response requested with `_preload_content=False`, a failure raised as
    the client raises it (ApiException with the status)."""
    response = await request
    try:
        body = await response.read()
    finally:
        response.release()
    if not 200 <= response.status <= 299:
        raise ApiException(status=response.status, reason=body.decode(errors="replace"))
    document: Json = json.loads(body)
    return document
