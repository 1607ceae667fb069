"""The VideoGeneration custom resource: build it (a pure function), create it, cancel it.

One resource per generation, named by the generation's id, in `settings.namespace`. Creating is
idempotent (an existing resource of that name is the one we made before), so the request path
and the outbox reconciler can both try without coordination beyond the generation row's lock.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from genvid_api.config import Settings
from genvid_api.models import Generation
from genvid_contracts.resource import (
    GROUP,
    KIND,
    OWNER_LABEL,
    OWNER_NAME_ANNOTATION,
    PART_OF_LABELS,
    PLURAL,
    VERSION,
    deadline_text,
)

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"


class ApiserverUnavailable(Exception):
    """The apiserver could not be reached or refused for a reason worth retrying."""


class InvalidResource(Exception):
    """The apiserver rejected the resource itself (validation): retrying will not help."""


def build_video_generation(generation: Generation, owner_name: str | None = None) -> dict[str, Any]:
    """The VideoGeneration of a generation row: the api's half of the contract with the operator.
    `owner_name`, the owner's username, is only for people reading `kubectl get`."""
    spec: dict[str, Any] = {
        "prompt": generation.prompt,
        "model": generation.model,
        "durationSeconds": generation.duration_seconds,
        "aspectRatio": generation.aspect_ratio,
        "owner": str(generation.user_id),
        "cancel": generation.cancel_requested,
    }
    if generation.negative_prompt is not None:
        spec["negativePrompt"] = generation.negative_prompt
    if generation.seed is not None:
        spec["seed"] = generation.seed
    if generation.idempotency_key is not None:
        spec["idempotencyKey"] = generation.idempotency_key
    if generation.deadline_at is not None:
        spec["deadline"] = deadline_text(generation.deadline_at)
    metadata: dict[str, Any] = {
        "name": str(generation.id),
        "labels": {**PART_OF_LABELS, OWNER_LABEL: str(generation.user_id)},
    }
    if owner_name is not None:
        metadata["annotations"] = {OWNER_NAME_ANNOTATION: owner_name}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": metadata, "spec": spec}


def _apiserver_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or b"")["message"])
    except (TypeError, ValueError, KeyError):
        return f"{exc.status} {exc.reason}"


class ResourceClient:
    """The api's Kubernetes client: VideoGenerations in one namespace, nothing else."""

    def __init__(self, api_client: k8s.ApiClient, namespace: str, timeout: float) -> None:
        self._api_client = api_client
        self._objects = k8s.CustomObjectsApi(api_client)
        self.namespace = namespace
        self._timeout = timeout

    @classmethod
    async def connect(cls, settings: Settings) -> ResourceClient:
        """From settings.kubeconfig if set, else the pod's service account."""
        configuration = k8s.Configuration()
        if settings.kubeconfig:
            await k8s_config.load_kube_config(
                config_file=settings.kubeconfig,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)
        api_client = k8s.ApiClient(configuration=configuration)
        return cls(api_client, settings.namespace, settings.kube_request_timeout_seconds)

    async def close(self) -> None:
        await self._api_client.close()

    async def ping(self) -> None:
        """GET /version (readable by any identity): raises if the apiserver does not answer."""
        await k8s.VersionApi(self._api_client).get_code(_request_timeout=self._timeout)

    async def create(self, generation: Generation, owner_name: str | None = None) -> bool:
        """Create the generation's resource; True if created now, False if it already existed."""
        try:
            await self._objects.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                build_video_generation(generation, owner_name),
                _request_timeout=self._timeout,
            )
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            if exc.status in (400, 422):
                raise InvalidResource(_apiserver_message(exc)) from exc
            raise ApiserverUnavailable(_apiserver_message(exc)) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ApiserverUnavailable(repr(exc)) from exc

    async def request_cancel(self, generation_id: uuid.UUID) -> bool:
        """Merge-patch spec.cancel=true; False if the resource does not exist."""
        try:
            await self._objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                str(generation_id),
                {"spec": {"cancel": True}},
                _content_type=MERGE_PATCH,
                _request_timeout=self._timeout,
            )
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise ApiserverUnavailable(_apiserver_message(exc)) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ApiserverUnavailable(repr(exc)) from exc
