"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

It is configured as a small production cluster would be (TLS with client certificates,
Node and RBAC authorization, NodeRestriction admission, per-controller service accounts), so
what passes here — RBAC rules, Job semantics, garbage collection — passes on a real cluster.
Only the container runtime differs: see `genvid_devstack.kubelet`.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from genvid_devstack.binaries import Binaries
from genvid_devstack.pki import SERVICE_CLUSTER_IP_RANGE, CertPair, Pki, ensure_pki
from genvid_devstack.process import Process, spawn, wait_until
from genvid_devstack.state import State

NODE_NAME = "genvid-node"
# Where GenVid runs on the local stack; the admin kubeconfig's context defaults to it.
NAMESPACE = "genvid"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class ControlPlane:
    server: str
    pki: Pki
    processes: tuple[Process, ...]


def kubeconfig(
    server: str, ca: Path, user: str, client: CertPair, namespace: str | None = None
) -> dict[str, Any]:
    """A self-contained kubeconfig (certificates inline), so it can be copied anywhere; its
    context defaults to `namespace` when given."""

    def inline(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "genvid-local",
                "cluster": {"server": server, "certificate-authority-data": inline(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": inline(client.cert),
                    "client-key-data": inline(client.key),
                },
            }
        ],
        "contexts": [
            {
                "name": "genvid-local",
                "context": {
                    "cluster": "genvid-local",
                    "user": user,
                    **({"namespace": namespace} if namespace else {}),
                },
            }
        ],
        "current-context": "genvid-local",
    }


def _write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _client_context(pki: Pki, client: CertPair) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca.cert)
    context.load_cert_chain(client.cert, client.key)
    return context


def _https_ok(url: str, pki: Pki, client: CertPair) -> bool:
    context = _client_context(pki, client)
    try:
        return httpx.get(url, verify=context, timeout=2).text.strip() == "ok"
    except httpx.HTTPError:
        return False


def start_control_plane(state: State, binaries: Binaries) -> ControlPlane:
    pki = ensure_pki(state.root, NODE_NAME)
    processes: list[Process] = []
    try:
        etcd = _start_etcd(state, binaries, pki)
        processes.append(etcd)
        server = f"https://127.0.0.1:{state.port('kube-apiserver')}"
        apiserver = _start_apiserver(state, binaries, pki, etcd_url=_etcd_url(state), server=server)
        processes.append(apiserver)
        configs = {
            # The developer's: `kubectl get vg` lists GenVid's namespace, not `default`.
            state.kubeconfig: ("genvid-admin", pki.admin, NAMESPACE),
            state.root / "controller-manager.kubeconfig": (
                "system:kube-controller-manager",
                pki.controller_manager,
                None,
            ),
            state.root / "kubelet.kubeconfig": (f"system:node:{NODE_NAME}", pki.kubelet, None),
            state.root / "scheduler.kubeconfig": ("system:kube-scheduler", pki.scheduler, None),
        }
        for path, (user, pair, namespace) in configs.items():
            _write_kubeconfig(path, kubeconfig(server, pki.ca.cert, user, pair, namespace))
        processes.append(_start_controller_manager(state, binaries, pki))
    except BaseException:
        for process in reversed(processes):
            process.stop()
        raise
    return ControlPlane(server=server, pki=pki, processes=tuple(processes))


def _etcd_url(state: State) -> str:
    return f"https://127.0.0.1:{state.port('etcd')}"


def _start_etcd(state: State, binaries: Binaries, pki: Pki) -> Process:
    client_url = _etcd_url(state)
    peer_url = f"http://127.0.0.1:{state.port('etcd-peer')}"
    process = spawn(
        "etcd",
        [
            binaries.etcd,
            "--name=genvid",
            f"--data-dir={state.root / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=genvid={peer_url}",
            f"--cert-file={pki.etcd.cert}",
            f"--key-file={pki.etcd.key}",
            f"--trusted-ca-file={pki.ca.cert}",
            "--client-cert-auth",
            # A throwaway development store: fsync only slows tests down.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        log_dir=state.logs,
    )
    wait_until(
        lambda: _etcd_healthy(f"{client_url}/health", pki),
        timeout=30,
        process=process,
    )
    return process


def _etcd_healthy(url: str, pki: Pki) -> bool:
    context = _client_context(pki, pki.apiserver_etcd_client)
    try:
        return bool(httpx.get(url, verify=context, timeout=2).json().get("health") == "true")
    except (httpx.HTTPError, ValueError):
        return False


def _start_apiserver(
    state: State, binaries: Binaries, pki: Pki, *, etcd_url: str, server: str
) -> Process:
    port = server.rsplit(":", 1)[1]
    process = spawn(
        "kube-apiserver",
        [
            binaries.kube_apiserver,
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # The endpoint reconciler refuses loopback addresses; pods here reach the
            # apiserver through their kubeconfig, not the kubernetes Service.
            "--endpoint-reconciler-type=none",
            f"--secure-port={port}",
            f"--cert-dir={state.root / 'apiserver'}",
            f"--etcd-servers={etcd_url}",
            f"--etcd-cafile={pki.ca.cert}",
            f"--etcd-certfile={pki.apiserver_etcd_client.cert}",
            f"--etcd-keyfile={pki.apiserver_etcd_client.key}",
            f"--tls-cert-file={pki.apiserver.cert}",
            f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca.cert}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--kubelet-client-certificate={pki.apiserver_kubelet_client.cert}",
            f"--kubelet-client-key={pki.apiserver_kubelet_client.key}",
            f"--kubelet-certificate-authority={pki.ca.cert}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            # Front-proxy (aggregation layer) settings, which controllers expect to find.
            f"--requestheader-client-ca-file={pki.ca.cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.front_proxy_client.cert}",
            f"--proxy-client-key-file={pki.front_proxy_client.key}",
            "--profiling=false",
        ],
        log_dir=state.logs,
    )
    wait_until(
        lambda: _https_ok(f"{server}/readyz", pki, pki.admin),
        timeout=60,
        process=process,
    )
    return process


def _start_controller_manager(state: State, binaries: Binaries, pki: Pki) -> Process:
    port = state.port("kube-controller-manager")
    kubeconfig_path = state.root / "controller-manager.kubeconfig"
    process = spawn(
        "kube-controller-manager",
        [
            binaries.kube_controller_manager,
            f"--kubeconfig={kubeconfig_path}",
            f"--authentication-kubeconfig={kubeconfig_path}",
            f"--authorization-kubeconfig={kubeconfig_path}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={state.root / 'controller-manager'}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca.cert}",
            f"--cluster-signing-cert-file={pki.ca.cert}",
            f"--cluster-signing-key-file={pki.ca.key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--controllers=*",
            "--profiling=false",
        ],
        log_dir=state.logs,
    )
    wait_until(
        lambda: _insecure_ok(f"https://127.0.0.1:{port}/healthz"),
        timeout=60,
        process=process,
    )
    return process


def _insecure_ok(url: str) -> bool:
    """kube-controller-manager serves /healthz with a self-signed certificate of its own."""
    try:
        return httpx.get(url, verify=False, timeout=2).text.strip() == "ok"
    except httpx.HTTPError:
        return False
