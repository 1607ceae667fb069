"""The Node object and its Lease: what makes the control plane consider this node alive.

The node-lifecycle controller marks a node NotReady (and evicts its pods) when neither its Lease
in `kube-node-lease` nor its Ready condition has been renewed for the grace period (~40-50 s), so
the Lease is renewed every 10 s like a kubelet's, and the status less often.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from genvid_devstack.kubelet.kube import REQUEST_TIMEOUT, Obj, raw

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
LEASE_RENEW_SECONDS = 10
STATUS_REFRESH_SECONDS = 60
MAX_PODS = 110

_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class NodeSettings:
    name: str
    address: str
    root_dir: Path
    kubelet_port: int | None  # where the log server listens, if it does


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            return value.strip('"')
    return "Linux"


def _memory_kib() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def architecture() -> str:
    machine = platform.machine()
    return _ARCHITECTURES.get(machine, machine)


def node_manifest(settings: NodeSettings) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": settings.name,
            "labels": {
                "kubernetes.io/hostname": settings.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": architecture(),
            },
        },
    }


def _condition(kind: str, ok: bool, reason: str, message: str, previous: list[Obj]) -> Obj:
    status = "True" if ok else "False"
    now = _now()
    before = next((c for c in previous if c.get("type") == kind), None)
    since = before.get("lastTransitionTime") if before and before.get("status") == status else None
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": _time(now),
        "lastTransitionTime": since or _time(now),
    }


def node_status(settings: NodeSettings, kubelet_version: str, previous: list[Obj]) -> Obj:
    """Always Ready: the kubelet is up whenever it can say so; there is no runtime to fail."""
    resources = {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{_memory_kib()}Ki",
        "ephemeral-storage": f"{shutil.disk_usage(settings.root_dir).total // 1024}Ki",
        "pods": str(MAX_PODS),
    }
    status: Obj = {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            _condition(
                "MemoryPressure",
                False,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                previous,
            ),
            _condition(
                "DiskPressure",
                False,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                previous,
            ),
            _condition(
                "PIDPressure",
                False,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                previous,
            ),
            _condition(
                "Ready",
                True,
                "KubeletReady",
                "process kubelet is posting ready status",
                previous,
            ),
        ],
        "addresses": [
            {"type": "InternalIP", "address": settings.address},
            {"type": "Hostname", "address": settings.name},
        ],
        "nodeInfo": {
            "machineID": _read("/etc/machine-id"),
            "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
            "bootID": _read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": platform.release(),
            "osImage": _os_image(),
            "containerRuntimeVersion": "process://genvid",
            "kubeletVersion": kubelet_version,
            "operatingSystem": "linux",
            "architecture": architecture(),
        },
    }
    if settings.kubelet_port is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": settings.kubelet_port}}
    return status


class NodeAgent:
    """Registers the node, then keeps its Lease and status fresh until cancelled."""

    def __init__(self, api: client.ApiClient, settings: NodeSettings) -> None:
        self._core = client.CoreV1Api(api)
        self._leases = client.CoordinationV1Api(api)
        self._version = client.VersionApi(api)
        self._settings = settings
        self._uid = ""
        self._kubelet_version = ""

    async def register(self) -> None:
        """Create the Node (or find it from an earlier run) and report it Ready."""
        name = self._settings.name
        version: Any = await self._version.get_code(_request_timeout=REQUEST_TIMEOUT)
        # Nothing reads this as more than a label, but it must parse as a version: the server's.
        self._kubelet_version = str(version.git_version)
        try:
            node = await raw(
                self._core.read_node(name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
            )
        except ApiException as error:
            if error.status != 404:
                raise
            node = await raw(
                self._core.create_node(
                    node_manifest(self._settings),
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
            log.info("registered node %s", name)
        self._uid = node["metadata"]["uid"]
        await self._update_status(node.get("status") or {})
        await self._renew_lease()

    async def run(self) -> None:
        last_status = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(LEASE_RENEW_SECONDS)
            try:
                await self._renew_lease()
                if asyncio.get_running_loop().time() - last_status >= STATUS_REFRESH_SECONDS:
                    node = await raw(
                        self._core.read_node(
                            self._settings.name,
                            _preload_content=False,
                            _request_timeout=REQUEST_TIMEOUT,
                        )
                    )
                    await self._update_status(node.get("status") or {})
                    last_status = asyncio.get_running_loop().time()
            except (ApiException, aiohttp.ClientError, TimeoutError) as error:
                log.warning("node heartbeat failed, retrying: %s", error)

    async def _update_status(self, previous: Obj) -> None:
        status = node_status(
            self._settings, self._kubelet_version, previous.get("conditions") or []
        )
        await raw(
            self._core.patch_node_status(
                self._settings.name,
                {"status": status},
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )

    async def _renew_lease(self) -> None:
        name = self._settings.name
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": _micro_time(_now()),
        }
        try:
            await raw(
                self._leases.patch_namespaced_lease(
                    name,
                    LEASE_NAMESPACE,
                    {"spec": spec},
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except ApiException as error:
            if error.status != 404:
                raise
            owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": self._uid}
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": name,
                    "namespace": LEASE_NAMESPACE,
                    "ownerReferences": [owner],
                },
                "spec": spec,
            }
            await raw(
                self._leases.create_namespaced_lease(
                    LEASE_NAMESPACE, lease, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            )
