"""Certificates and keys for the local control plane.

The local stack runs Kubernetes the way a real cluster does: TLS everywhere and client
certificates whose subjects are the identities RBAC and the Node authorizer know
(system:masters, system:kube-controller-manager, system:node:NAME, system:kube-scheduler).
Everything is made once per state folder and reused on warm starts, so stored service-account
tokens and kubeconfigs stay valid; a certificate close to expiry is made anew.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)
_RENEW_BEFORE = dt.timedelta(days=30)

# The apiserver's in-cluster names and first service IP (of --service-cluster-ip-range).
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
_APISERVER_SANS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "127.0.0.1",
    "10.96.0.1",
)


# A CA signs certificates and revocation lists, and nothing else (KeyUsage names all nine).
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True,
    content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Paths of every credential the stack uses; all live under `STATE/pki`."""

    ca: CertPair
    apiserver: CertPair
    apiserver_kubelet_client: CertPair
    apiserver_etcd_client: CertPair
    etcd: CertPair
    admin: CertPair
    controller_manager: CertPair
    kubelet: CertPair
    kubelet_serving: CertPair
    scheduler: CertPair
    front_proxy_client: CertPair
    service_account_key: Path
    service_account_pub: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _still_valid(path: Path) -> bool:
    if not path.exists():
        return False
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > _RENEW_BEFORE


def _ensure_ca(pair: CertPair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if _still_valid(pair.cert) and pair.key.exists():
        cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
        key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    name = _name("genvid-local-ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY * 5)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_key(pair.key, key)
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


@dataclass(frozen=True)
class _Leaf:
    pair: CertPair
    common_name: str
    organization: str | None = None
    server_names: Sequence[str] = ()
    client: bool = True


def _ensure_leaf(
    leaf: _Leaf,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    ca_renewed: bool,
) -> None:
    pair = leaf.pair
    if not ca_renewed and _still_valid(pair.cert) and pair.key.exists():
        return
    ca_cert, ca_key = ca
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    usages = []
    if leaf.server_names:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if leaf.client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(leaf.common_name, leaf.organization))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if leaf.server_names:
        builder = builder.add_extension(_san(leaf.server_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(pair.key, key)
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_pki(state_dir: Path, node_name: str) -> Pki:
    """Make whatever is missing or about to expire under `state_dir/pki`."""
    root = state_dir / "pki"
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)

    def pair(name: str) -> CertPair:
        return CertPair(root / f"{name}.crt", root / f"{name}.key")

    pki = Pki(
        ca=pair("ca"),
        apiserver=pair("apiserver"),
        apiserver_kubelet_client=pair("apiserver-kubelet-client"),
        apiserver_etcd_client=pair("apiserver-etcd-client"),
        etcd=pair("etcd"),
        admin=pair("admin"),
        controller_manager=pair("controller-manager"),
        kubelet=pair("kubelet"),
        kubelet_serving=pair("kubelet-serving"),
        scheduler=pair("scheduler"),
        front_proxy_client=pair("front-proxy-client"),
        service_account_key=root / "sa.key",
        service_account_pub=root / "sa.pub",
    )
    ca_renewed = not (_still_valid(pki.ca.cert) and pki.ca.key.exists())
    ca = _ensure_ca(pki.ca)
    server = ("localhost", "127.0.0.1")
    leaves = [
        _Leaf(pki.apiserver, "kube-apiserver", server_names=_APISERVER_SANS, client=False),
        _Leaf(pki.apiserver_kubelet_client, "kube-apiserver-kubelet-client", "system:masters"),
        _Leaf(pki.apiserver_etcd_client, "kube-apiserver-etcd-client"),
        _Leaf(pki.etcd, "etcd", server_names=server),
        _Leaf(pki.admin, "genvid-admin", "system:masters"),
        _Leaf(pki.controller_manager, "system:kube-controller-manager"),
        _Leaf(pki.kubelet, f"system:node:{node_name}", "system:nodes"),
        _Leaf(pki.kubelet_serving, f"system:node:{node_name}", server_names=server, client=False),
        _Leaf(pki.scheduler, "system:kube-scheduler"),
        _Leaf(pki.front_proxy_client, "front-proxy-client"),
    ]
    for leaf in leaves:
        _ensure_leaf(leaf, ca, ca_renewed=ca_renewed)
    if ca_renewed or not pki.service_account_key.exists():
        sa_key = _new_key()
        _write_key(pki.service_account_key, sa_key)
        pki.service_account_pub.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return pki


def ensure_server_cert(
    state_dir: Path, name: str, server_names: Sequence[str] = ("localhost", "127.0.0.1")
) -> CertPair:
    """A serving certificate for another local server (NATS with TLS), signed by the stack's
    CA under `state_dir/pki` (made if missing), as the control plane's are."""
    root = state_dir / "pki"
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    ca_pair = CertPair(root / "ca.crt", root / "ca.key")
    ca_renewed = not (_still_valid(ca_pair.cert) and ca_pair.key.exists())
    pair = CertPair(root / f"{name}.crt", root / f"{name}.key")
    leaf = _Leaf(pair, name, server_names=server_names, client=False)
    _ensure_leaf(leaf, _ensure_ca(ca_pair), ca_renewed=ca_renewed)
    return pair
