"""The Helm chart (charts/genvid) and the plain manifests rendered from it.

helm lints and renders it; the real kube-apiserver of the local stack (RBAC on, PodSecurity
admission, the CRD installed) accepts the output, and evaluates its RBAC the way it will in a
cluster: `kubectl auth can-i --as=system:serviceaccount:...` after a real apply, and the
operator, logged in with nothing but its ServiceAccount's token, runs a generation.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from genvid_operator.config import Settings as OperatorSettings
from support import REPO
from support.chart import (
    CHART,
    MANIFESTS,
    RELEASE,
    Manifest,
    env_of,
    find,
    helm,
    helm_binary,
    render,
    template,
)
from support.kube import KUBECTL, kubectl
from support.processes import free_port

pytestmark = pytest.mark.stack


def pod_specs(docs: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


# --- helm lint and helm template ---------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        [],
        [
            "--set=crds.install=false,rbac.discovery=false,migrations.enabled=false",
            "--set=api.replicaCount=1,operator.metrics.enabled=false,operator.verbose=true",
            "--set=worker.secret.create=false,worker.serviceAccount.create=false",
        ],
        [
            "--set=api.jwt.existingSecret=my-jwt,image.digest=sha256:" + "a" * 64,
            "--set=gcp.project=my-project,gcp.location=us-central1,worker.provider=veo",
            "--set=worker.secret.data.GOOGLE_API_KEY=key,worker.config.GENVID_VEO_MODEL=veo-3",
            "--set=operator.config.pricesUSDPerSecond.veo-3=0.40",
            "--set=imagePullSecrets[0].name=regcred,commonLabels.team=video",
            "--set=api.serviceAccount.annotations.iam\\.gke\\.io/gcp-service-account=a@b",
        ],
    ],
    ids=["defaults", "toggles-off", "gke"],
)
def test_chart_lints_strictly(values: list[str]) -> None:
    result = helm("lint", "--strict", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_template_wires_the_components_together() -> None:
    docs = render()
    operator = find(docs, "Deployment", "genvid-operator")
    api = find(docs, "Deployment", "genvid-api")
    worker_sa = find(docs, "ServiceAccount", "genvid-worker")
    find(docs, "ConfigMap", "genvid-worker")
    find(docs, "Secret", "genvid-worker")
    find(docs, "Service", "genvid-api")

    # One operator, never two at once.
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    (op,) = operator["spec"]["template"]["spec"]["containers"]
    assert op["command"] == ["python", "-m", "genvid_operator"]
    assert "--liveness=http://0.0.0.0:8081/healthz" in op["args"]
    op_env = env_of(op)
    # The worker Jobs get the operator's own image, the worker's ServiceAccount and config.
    assert op_env["GENVID_WORKER_IMAGE"] == op["image"] == "genvid:0.1.0"
    assert op_env["GENVID_WORKER_SERVICE_ACCOUNT"] == "genvid-worker"
    assert op_env["GENVID_WORKER_CONFIG_NAME"] == "genvid-worker"
    assert op_env["GENVID_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert op_env["DATABASE_URL"] == {"secretKeyRef": {"name": "genvid-database", "key": "url"}}

    (web,) = api["spec"]["template"]["spec"]["containers"]
    assert web["command"][:3] == ["uvicorn", "--factory", "genvid_api.main:create_app"]
    api_env = env_of(web)
    assert api_env["GENVID_SIGNING_MODE"] == "iam"
    assert api_env["GENVID_JWT_SECRET"] == {
        "secretKeyRef": {"name": "genvid-api", "key": "jwt-secret"}
    }
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api_env["GENVID_DATABASE_TIMEOUT_SECONDS"] == "3"

    # The worker never talks to the apiserver.
    assert worker_sa["automountServiceAccountToken"] is False
    assert not [
        d
        for d in docs
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and any(s["name"] == "genvid-worker" for s in d["subjects"])
    ]

    migrate = find(docs, "Job", "genvid-migrate")
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (job,) = migrate["spec"]["template"]["spec"]["containers"]
    assert job["command"] == ["alembic", "-c", "/app/api/alembic.ini", "upgrade", "head"]


def test_the_budgets_dispatch_and_gc_values_reach_the_operators_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = render(
        "--set=budgets.globalMaxActive=7,budgets.userMaxActive=3",
        "--set=operator.config.kubeConnections=12,operator.config.workerLimit=9",
        "--set=operator.config.gcYoungThreshold=0",
        "--set-json=budgets.admissionIntervalSeconds=0.5",
    )
    (op,) = find(docs, "Deployment", "genvid-operator")["spec"]["template"]["spec"]["containers"]
    for name, value in env_of(op).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    assert (settings.global_max_active, settings.user_max_active) == (7, 3)
    assert settings.admission_interval_seconds == 0.5
    assert (settings.kube_connections, settings.worker_limit) == (12, 9)
    assert settings.gc_young_threshold == 0


def test_the_operator_has_no_worker_limit_unless_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (op,) = find(render(), "Deployment", "genvid-operator")["spec"]["template"]["spec"][
        "containers"
    ]
    assert "GENVID_WORKER_LIMIT" not in env_of(op)
    for name, value in env_of(op).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    assert OperatorSettings().worker_limit is None


def egress_ports(policy: Manifest) -> set[int]:
    return {port["port"] for rule in policy["spec"]["egress"] for port in rule["ports"]}


def test_network_policies_let_each_component_reach_only_what_it_needs() -> None:
    docs = render()
    api, operator, worker = (
        find(docs, "NetworkPolicy", f"genvid-{name}") for name in ("api", "operator", "worker")
    )
    assert worker["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "genvid-worker",
        "app.kubernetes.io/managed-by": "genvid-operator",
    }
    assert worker["spec"]["ingress"] == []
    assert egress_ports(worker) == {53, 443}  # DNS, Cloud Storage and Vertex AI: nothing else
    assert egress_ports(api) == egress_ports(operator) == {53, 443, 4222, 5432, 6443}
    assert api["spec"]["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]
    narrowed = render("--set=networkPolicy.postgresTo[0].ipBlock.cidr=10.1.2.3/32")
    (postgres,) = [
        rule
        for rule in find(narrowed, "NetworkPolicy", "genvid-api")["spec"]["egress"]
        if rule["ports"][0]["port"] == 5432
    ]
    assert postgres["to"] == [{"ipBlock": {"cidr": "10.1.2.3/32"}}]
    assert not [
        d for d in render("--set=networkPolicy.enabled=false") if d["kind"] == "NetworkPolicy"
    ]


def test_nats_credentials_come_from_an_existing_secret() -> None:
    docs = render(
        "--set=nats.url=tls://nats:4222", "--set=nats.existingSecret=nats-creds",
        "--set=nats.userKey=user", "--set=nats.passwordKey=password",
    )  # fmt: skip
    for name in ("genvid-api", "genvid-operator"):
        (container,) = find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        env = env_of(container)
        assert env["NATS_URL"] == "tls://nats:4222"
        assert env["GENVID_NATS_USER"] == {"secretKeyRef": {"name": "nats-creds", "key": "user"}}
        assert env["GENVID_NATS_PASSWORD"] == {
            "secretKeyRef": {"name": "nats-creds", "key": "password"}
        }
        assert "GENVID_NATS_NKEY_SEED" not in env


def test_a_private_nats_ca_is_mounted_into_the_api_and_the_operator() -> None:
    docs = render(
        "--set=nats.url=tls://nats:4222", "--set=nats.tls.caSecret=nats-ca",
        "--set=nats.tls.caKey=ca.pem",
    )  # fmt: skip
    for name in ("genvid-api", "genvid-operator"):
        spec = find(docs, "Deployment", name)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        mount = {"name": "nats-ca", "mountPath": "/etc/genvid/nats-ca", "readOnly": True}
        assert mount in container["volumeMounts"]
        assert {
            "name": "nats-ca",
            "secret": {"secretName": "nats-ca", "items": [{"key": "ca.pem", "path": "ca.crt"}]},
        } in spec["volumes"]
        assert env_of(container)["GENVID_NATS_TLS_CA_FILE"] == "/etc/genvid/nats-ca/ca.crt"
    for where, spec in pod_specs(render()):
        assert all(volume["name"] != "nats-ca" for volume in spec["volumes"]), where
        for container in spec["containers"]:
            assert "GENVID_NATS_TLS_CA_FILE" not in env_of(container), where


def test_every_pod_is_locked_down() -> None:
    for where, spec in pod_specs(render()):
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["enableServiceLinks"] is False, where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], where
            assert container["resources"]["requests"], where


def test_the_chart_installs_the_repositorys_crd_unchanged() -> None:
    source = yaml.safe_load((REPO / "crds" / "videogenerations.genvid.io.yaml").read_text())
    crd = find(render(), "CustomResourceDefinition", "videogenerations.genvid.io")
    assert crd["spec"] == source["spec"]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "genvid"
    link = CHART / "files" / "crds" / "videogenerations.genvid.io.yaml"
    assert link.is_symlink(), "the chart must not keep its own copy of the CRD"

    without = render("--set", "crds.install=false")
    assert not [d for d in without if d["kind"] == "CustomResourceDefinition"]


def test_the_packaged_chart_carries_the_crd(tmp_path: Path) -> None:
    result = helm("package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("genvid-0.1.0.tgz")
    rendered = helm("template", RELEASE, str(archive))
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: CustomResourceDefinition" in rendered.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["--set-string", "api.replicaCount=two"],
            "at '/api/replicaCount': got string, want integer",
        ),
        (["--set", "api.replicas=3"], "at '/api': additional properties 'replicas' not allowed"),
        (["--set", "bogus=1"], "additional properties 'bogus' not allowed"),
        (["--set", "worker.provider=openai"], "at '/worker/provider': value must be one of"),
        (["--set", "api.config.defaultModel=veo-9"], 'api.config.defaultModel "veo-9" is not in'),
    ],
)
def test_invalid_values_fail_with_a_clear_error(values: list[str], message: str) -> None:
    result = template(*values)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("toggle", "kind"),
    [("serviceMonitor.enabled", "ServiceMonitor"), ("prometheusRule.enabled", "PrometheusRule")],
)
def test_monitoring_toggles_need_the_prometheus_operator_crds(toggle: str, kind: str) -> None:
    missing = template("--set", f"{toggle}=true")
    assert missing.returncode != 0
    assert (
        f"{toggle}=true, but the cluster does not serve monitoring.coreos.com/v1/{kind}"
        in missing.stderr
    )

    served = render("--set", f"{toggle}=true", "--api-versions", f"monitoring.coreos.com/v1/{kind}")
    monitors = [d for d in served if d["kind"] == kind]
    # One PrometheusRule; a ServiceMonitor for the operator and one for the api.
    assert len(monitors) == (2 if kind == "ServiceMonitor" else 1)
    for monitor in monitors:
        assert monitor["metadata"]["namespace"] == "genvid"


def test_manifests_are_the_rendered_chart() -> None:
    """manifests/genvid.yaml is generated: the chart stays the one source."""
    fresh = template("-f", str(MANIFESTS / "values.yaml"))
    assert fresh.returncode == 0, fresh.stderr
    assert (MANIFESTS / "genvid.yaml").read_text() == fresh.stdout, (
        "manifests/genvid.yaml is stale; regenerate it (manifests/README.md): helm template "
        "genvid charts/genvid --namespace genvid -f manifests/values.yaml > manifests/genvid.yaml"
    )
    assert "kind: Secret\nmetadata:\n  name: genvid-api\n" not in fresh.stdout  # no key in git
    built = subprocess.run(
        [str(KUBECTL), "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    assert "name: genvid-operator" in built.stdout


# --- against the real apiserver -----------------------------------------------------------


DRY_RUN_EXPECTED = (
    "customresourcedefinition.apiextensions.k8s.io/videogenerations.genvid.io",
    "deployment.apps/genvid-operator",
    "deployment.apps/genvid-api",
    "job.batch/genvid-migrate",
    "role.rbac.authorization.k8s.io/genvid-operator",
    "networkpolicy.networking.k8s.io/genvid-api",
    "networkpolicy.networking.k8s.io/genvid-operator",
    "networkpolicy.networking.k8s.io/genvid-worker",
)


def test_rendered_chart_passes_server_side_dry_run(
    stack_env: dict[str, str], namespace: str
) -> None:
    # The namespace enforces the "restricted" Pod Security Standard: the defaults must meet it.
    labeled = kubectl(
        stack_env["KUBECONFIG"],
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
    )
    assert labeled.returncode == 0, labeled.stderr
    manifests = template(namespace=namespace)
    assert manifests.returncode == 0, manifests.stderr

    result = kubectl(
        stack_env["KUBECONFIG"], "apply", "--dry-run=server", "-f", "-", input=manifests.stdout
    )
    assert result.returncode == 0, result.stderr
    assert "PodSecurity" not in result.stderr, result.stderr
    for name in DRY_RUN_EXPECTED:
        assert name in result.stdout


def test_helm_install_checks_the_database_secret_first(
    stack_env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    """`helm install` against the cluster fails at once, saying what to create, instead of
    the migration hook timing out; with the Secret it passes the server-side dry run."""
    homes = {f"HELM_{d}_HOME": str(tmp_path / d.lower()) for d in ("CACHE", "CONFIG", "DATA")}

    def install() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(helm_binary()), "install", RELEASE, str(CHART), "--namespace", namespace,
             "--dry-run=server", "--set=crds.install=false"],
            env={**os.environ, **homes, "KUBECONFIG": stack_env["KUBECONFIG"]},
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    missing = install()
    assert missing.returncode != 0
    assert 'Secret "genvid-database" with key "url" not found' in missing.stderr
    created = kubectl(
        stack_env["KUBECONFIG"], "-n", namespace, "create", "secret", "generic", "genvid-database",
        "--from-literal=url=postgresql://genvid@db:5432/genvid",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    dry_run = install()
    assert dry_run.returncode == 0, dry_run.stderr
    assert "kubectl -n " + namespace + " get videogenerations" in dry_run.stdout  # NOTES


RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


@contextlib.contextmanager
def applied(
    env: dict[str, str], namespace: str, kinds: set[str], *values: str
) -> Iterator[list[Manifest]]:
    """Really apply the chart's objects of these kinds; cluster-scoped ones are removed after."""
    docs = [d for d in render(*values, namespace=namespace) if d["kind"] in kinds]
    cluster_scoped = [
        f"{d['kind'].lower()}/{d['metadata']['name']}"
        for d in docs
        if d["kind"].startswith("Cluster")
    ]
    try:
        result = kubectl(env["KUBECONFIG"], "apply", "-f", "-", input=yaml.safe_dump_all(docs))
        assert result.returncode == 0, result.stderr
        yield docs
    finally:
        if cluster_scoped:
            kubectl(
                env["KUBECONFIG"], "delete", "--ignore-not-found", "--wait=false", *cluster_scoped,
                check=False,
            )  # fmt: skip


# (service account, verb and resource, extra kubectl flags, allowed)
CAN_I = [
    ("genvid-operator", ["create", "jobs.batch"], [], True),
    ("genvid-operator", ["delete", "jobs.batch"], [], True),
    ("genvid-operator", ["watch", "pods"], [], True),
    ("genvid-operator", ["patch", "videogenerations.genvid.io"], [], True),
    ("genvid-operator", ["patch", "videogenerations.genvid.io", "--subresource=status"], [], True),
    ("genvid-operator", ["update", "videogenerations.genvid.io", "--subresource=finalizers"], [],
     True),
    ("genvid-operator", ["create", "events"], [], True),
    ("genvid-operator", ["watch", "customresourcedefinitions.apiextensions.k8s.io"], [], True),
    ("genvid-operator", ["list", "namespaces"], [], True),
    ("genvid-operator", ["delete", "pods"], [], False),
    ("genvid-operator", ["create", "pods"], [], False),
    ("genvid-operator", ["delete", "videogenerations.genvid.io"], [], True),  # retention
    ("genvid-operator", ["get", "secrets"], [], False),
    ("genvid-operator", ["create", "jobs.batch"], ["-n", "default"], False),
    ("genvid-api", ["create", "videogenerations.genvid.io"], [], True),
    ("genvid-api", ["patch", "videogenerations.genvid.io"], [], True),
    ("genvid-api", ["get", "videogenerations.genvid.io"], [], True),
    ("genvid-api", ["patch", "videogenerations.genvid.io", "--subresource=status"], [], False),
    ("genvid-api", ["create", "jobs.batch"], [], False),
    ("genvid-api", ["get", "pods"], [], False),
    ("genvid-api", ["get", "secrets"], [], False),
    ("genvid-worker", ["get", "pods"], [], False),
    ("genvid-worker", ["get", "videogenerations.genvid.io"], [], False),
    ("genvid-worker", ["create", "jobs.batch"], [], False),
    ("genvid-worker", ["get", "secrets"], [], False),
]  # fmt: skip


def test_rbac_is_least_privilege_as_the_apiserver_evaluates_it(
    stack_env: dict[str, str], namespace: str
) -> None:
    with applied(stack_env, namespace, RBAC_KINDS):
        wrong = []
        for account, what, flags, allowed in CAN_I:
            result = kubectl(
                stack_env["KUBECONFIG"],
                "auth",
                "can-i",
                f"--as=system:serviceaccount:{namespace}:{account}",
                *what,
                *(flags or ["-n", namespace]),
                check=False,
            )
            answer = result.stdout.strip()
            assert answer in ("yes", "no"), result.stderr
            if (answer == "yes") != allowed:
                wrong.append(f"{account} {' '.join(what + flags)}: {answer}")
        assert not wrong, wrong


def service_account_kubeconfig(
    env: dict[str, str], namespace: str, account: str, path: Path
) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount (a short-lived token)."""
    token = kubectl(
        env["KUBECONFIG"], "-n", namespace, "create", "token", account, "--duration=10m"
    )
    assert token.returncode == 0, token.stderr
    view = kubectl(env["KUBECONFIG"], "config", "view", "--raw", "--minify", "-o", "json")
    cluster = json.loads(view.stdout)["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stack", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token.stdout.strip()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "stack", "user": account}}],
        "current-context": "sa",
    }
    path.write_text(json.dumps(config))
    return path


def test_operator_runs_a_generation_with_only_the_charts_permissions(
    stack_env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    """The operator, authenticated as the chart's ServiceAccount and configured with the
    chart's environment, turns a VideoGeneration into a worker Job that reads the chart's
    worker ConfigMap; kopf reports no missing permission."""
    values = (
        f"--set=nats.url={stack_env['NATS_URL']},storage.bucket={stack_env['GENVID_BUCKET']}",
        "--set=worker.provider=synthetic",
        f"--set=worker.config.STORAGE_EMULATOR_HOST={stack_env['STORAGE_EMULATOR_HOST']}",
        "--set=operator.metrics.enabled=false",
    )
    deployment = find(render(*values, namespace=namespace), "Deployment", "genvid-operator")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    chart_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    log_path = tmp_path / "operator.log"
    with (
        applied(stack_env, namespace, RBAC_KINDS | {"ConfigMap", "Secret"}, *values),
        log_path.open("w") as log,
    ):
        kubeconfig = service_account_kubeconfig(
            stack_env, namespace, "genvid-operator", tmp_path / "kubeconfig"
        )
        process_env = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GENVID_DATABASE_URL")
        }
        operator = subprocess.Popen(
            [sys.executable, "-m", "genvid_operator", f"--liveness={liveness}"],
            env={
                **process_env,
                **chart_env,
                "GENVID_NAMESPACE": namespace,  # the chart's fieldRef
                "KUBECONFIG": str(kubeconfig),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            generation = {
                "apiVersion": "genvid.io/v1alpha1",
                "kind": "VideoGeneration",
                "metadata": {"name": "chart-probe"},
                "spec": {"prompt": "a red fox in snow", "owner": "user-1", "durationSeconds": 1},
            }
            created = kubectl(
                stack_env["KUBECONFIG"],
                "-n",
                namespace,
                "create",
                "-f",
                "-",
                input=json.dumps(generation),
            )
            assert created.returncode == 0, created.stderr
            phase = ""
            deadline = time.monotonic() + 60
            while phase not in ("SUCCEEDED", "FAILED") and time.monotonic() < deadline:
                assert operator.poll() is None, log_path.read_text()
                time.sleep(0.5)
                phase = kubectl(
                    stack_env["KUBECONFIG"], "-n", namespace, "get", "vg", "chart-probe",
                    "-o", "jsonpath={.status.phase}",
                ).stdout  # fmt: skip
            assert phase == "SUCCEEDED", log_path.read_text()
        finally:
            operator.terminate()
            operator.wait(timeout=30)
    output = log_path.read_text()
    assert "Not enough permissions" not in output, output
    assert "Forbidden" not in output, output
