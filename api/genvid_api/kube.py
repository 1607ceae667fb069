"""The VideoGeneration custom resource: build it (a pure function), create it, cancel it.

One resource per job, named by the job id, in `settings.namespace`. Creating is idempotent
(an existing resource of that name is the one we made before), so the request path and the
outbox reconciler can both try without coordination beyond the job row's lock.
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
from genvid_api.models import VideoGenerationJob
from genvid_contracts.resource import GROUP, KIND, OWNER_LABEL, PART_OF_LABELS, PLURAL, VERSION

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"


class KubeUnavailable(Exception):
    """The apiserver could not be reached or refused for a reason worth retrying."""


class InvalidResource(Exception):
    """The apiserver rejected the resource itself (validation): retrying will not help."""


def build_video_generation(job: VideoGenerationJob) -> dict[str, Any]:
    """The VideoGeneration for a job row (the api's half of the contract with the operator)."""
    spec: dict[str, Any] = {
        "prompt": job.prompt,
        "model": job.model,
        "durationSeconds": job.duration_seconds,
        "aspectRatio": job.aspect_ratio,
        "owner": str(job.user_id),
        "cancel": job.cancel_requested,
    }
    if job.negative_prompt is not None:
        spec["negativePrompt"] = job.negative_prompt
    if job.seed is not None:
        spec["seed"] = job.seed
    if job.idempotency_key is not None:
        spec["idempotencyKey"] = job.idempotency_key
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": str(job.id),
            "labels": {**PART_OF_LABELS, OWNER_LABEL: str(job.user_id)},
        },
        "spec": spec,
    }


def _apiserver_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or b"")["message"])
    except (TypeError, ValueError, KeyError):
        return f"{exc.status} {exc.reason}"


class Kube:
    def __init__(self, api_client: k8s.ApiClient, namespace: str, timeout: float) -> None:
        self._api_client = api_client
        self._objects = k8s.CustomObjectsApi(api_client)
        self.namespace = namespace
        self._timeout = timeout

    @classmethod
    async def connect(cls, settings: Settings) -> Kube:
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

    async def create(self, job: VideoGenerationJob) -> bool:
        """Create the job's resource; True if created now, False if it already existed."""
        try:
            await self._objects.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                build_video_generation(job),
                _request_timeout=self._timeout,
            )
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            if exc.status in (400, 422):
                raise InvalidResource(_apiserver_message(exc)) from exc
            raise KubeUnavailable(_apiserver_message(exc)) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise KubeUnavailable(repr(exc)) from exc

    async def request_cancel(self, job_id: uuid.UUID) -> bool:
        """Merge-patch spec.cancel=true; False if the resource does not exist."""
        try:
            await self._objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                str(job_id),
                {"spec": {"cancel": True}},
                _content_type=MERGE_PATCH,
                _request_timeout=self._timeout,
            )
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise KubeUnavailable(_apiserver_message(exc)) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise KubeUnavailable(repr(exc)) from exc

    async def get(self, job_id: uuid.UUID) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await self._objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, str(job_id), _request_timeout=self._timeout
            )
            return obj
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise KubeUnavailable(_apiserver_message(exc)) from exc
