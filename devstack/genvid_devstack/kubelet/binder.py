"""The scheduler of a one-node cluster: bind each pending pod to this node.

It runs with the kube-scheduler's identity, because binding (`pods/binding`) is the scheduler's
right, not a node's. Pods for another scheduler are left alone, and so are pods whose
`nodeSelector` this node does not match (they stay Pending, as they would on a cluster without
such a node). Affinity, taints and resources are not considered: there is nowhere else to go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from genvid_devstack.kubelet.kube import REQUEST_TIMEOUT, Event, Obj, list_watch, raw

log = logging.getLogger(__name__)

DEFAULT_SCHEDULER = "default-scheduler"
# As kube-scheduler selects the pods it has to place.
UNSCHEDULED = "spec.nodeName=,status.phase!=Succeeded,status.phase!=Failed"
# A failed bind is retried a few times; after that the next relist (a few minutes) retries it.
_ATTEMPTS = 3


def wants_binding(pod: Obj, node_labels: Mapping[str, str]) -> bool:
    spec = pod.get("spec") or {}
    if spec.get("nodeName") or pod["metadata"].get("deletionTimestamp"):
        return False
    if spec.get("schedulerName", DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
        return False
    selector: Mapping[str, str] = spec.get("nodeSelector") or {}
    return all(node_labels.get(key) == value for key, value in selector.items())


def binding(pod: Obj, node_name: str) -> Obj:
    """The uid makes the bind fail, rather than bind a new pod that reused the name."""
    metadata = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": metadata["name"], "uid": metadata["uid"]},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
    }


class Binder:
    def __init__(self, api: client.ApiClient, node_name: str, node_labels: Mapping[str, str]):
        self._core = client.CoreV1Api(api)
        self._node_name = node_name
        self._node_labels = node_labels

    async def run(self) -> None:
        async for change in list_watch(
            self._core.list_pod_for_all_namespaces, field_selector=UNSCHEDULED
        ):
            pods = [change.object] if isinstance(change, Event) else change.items
            if isinstance(change, Event) and change.type == "DELETED":
                continue
            for pod in pods:
                if wants_binding(pod, self._node_labels):
                    await self._bind(pod)

    async def _bind(self, pod: Obj) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        for attempt in range(_ATTEMPTS):
            try:
                await raw(
                    self._core.create_namespaced_pod_binding(
                        name,
                        namespace,
                        binding(pod, self._node_name),
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                    )
                )
            except ApiException as error:
                # 409: bound meanwhile, or a new pod has the name; 404: gone. Nothing to do.
                if error.status in (404, 409):
                    return
                log.warning("binding %s/%s failed: %s", namespace, name, error)
            except (aiohttp.ClientError, TimeoutError) as error:
                log.warning("binding %s/%s failed: %s", namespace, name, error)
            else:
                log.info("bound %s/%s to %s", namespace, name, self._node_name)
                return
            await asyncio.sleep(attempt + 1)
