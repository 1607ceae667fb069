"""The node agent's main loop: watch the pods bound to this node, one worker per pod.

The watch is the only input. A pod seen for the first time gets a `PodWorker`; later versions
are handed to it (that is how a deletion reaches it); a pod that disappears from the API has its
worker cancelled (which ends its processes) and its folder removed. On start, folders of pods
that no longer exist are removed, and pods that an earlier run had started are failed by their
workers (see `PodWorker.run`).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from genvid_devstack.kubelet import envvars
from genvid_devstack.kubelet.kube import REQUEST_TIMEOUT, Event, Listed, Obj, list_watch, raw
from genvid_devstack.kubelet.podworker import PodWorker, WorkerSettings
from genvid_devstack.kubelet.runtime import Runtime

log = logging.getLogger(__name__)


class KubePodApi:
    """`PodApi` over the API with the node's credentials (what the Node authorizer allows)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    async def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        read = (
            self._core.read_namespaced_secret
            if kind == "Secret"
            else self._core.read_namespaced_config_map
        )
        try:
            obj = await raw(
                read(name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        if kind == "Secret":
            return envvars.secret_strings(obj.get("data"))
        return dict(obj.get("data") or {})

    async def patch_status(self, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        await raw(
            self._core.patch_namespaced_pod_status(
                meta["name"],
                meta["namespace"],
                {"metadata": {"uid": meta["uid"]}, "status": status},
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )

    async def delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        await raw(
            self._core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )


@dataclass(frozen=True)
class ContainerLog:
    path: Path
    worker: PodWorker
    container: str

    def running(self) -> bool:
        return self.worker.is_running(self.container)


class Agent:
    def __init__(
        self, api: client.ApiClient, runtime: Runtime, node_name: str, host_ip: str
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._pod_api = KubePodApi(api)
        self._runtime = runtime
        self._node_name = node_name
        self._settings = WorkerSettings(host_ip=host_ip)
        self._workers: dict[str, PodWorker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        first_list = True
        async for change in list_watch(
            self._core.list_pod_for_all_namespaces,
            field_selector=f"spec.nodeName={self._node_name}",
        ):
            if isinstance(change, Listed):
                current = {pod["metadata"]["uid"] for pod in change.items}
                for uid in set(self._workers) - current:
                    self._forget(uid)
                if first_list:
                    self._remove_folders_except(current)
                    first_list = False
                for pod in change.items:
                    self._observe(pod)
            elif isinstance(change, Event) and change.type == "DELETED":
                self._forget(change.object["metadata"]["uid"])
            else:
                self._observe(change.object)

    async def shutdown(self) -> None:
        """End every pod's processes (the workers stop them when cancelled)."""
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def container_log(self, namespace: str, pod: str, container: str) -> ContainerLog | None:
        for worker in self._workers.values():
            if worker.namespace == namespace and worker.name == pod:
                return ContainerLog(worker.log_path(container), worker, container)
        return None

    def _observe(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        worker = self._workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        worker = PodWorker(pod, api=self._pod_api, runtime=self._runtime, settings=self._settings)
        self._workers[uid] = worker
        task = asyncio.create_task(worker.run(), name=f"pod {worker.namespace}/{worker.name}")
        task.add_done_callback(_log_failure)
        self._tasks[uid] = task

    def _forget(self, uid: str) -> None:
        worker = self._workers.pop(uid, None)
        task = self._tasks.pop(uid, None)
        if worker is None or task is None:
            return
        task.cancel()
        folder = worker.dir
        task.add_done_callback(lambda _: shutil.rmtree(folder, ignore_errors=True))

    def _remove_folders_except(self, uids: set[str]) -> None:
        for folder in self._runtime.pods_dir.iterdir():
            if folder.name.rsplit("_", 1)[-1] not in uids:
                shutil.rmtree(folder, ignore_errors=True)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", task.get_name(), exc_info=task.exception())
