"""Prometheus in the local stack: it scrapes GenVid's api and operator (and the kube-apiserver)
and evaluates the chart's recording and alert rules, so dashboards and alerts are tried on
real series before they reach a cluster.

Everything it reads sits in `<state>/prometheus/`:

* `targets/*.json`: file discovery, one file per GenVid deployment, with the labels the chart's
  ServiceMonitors give in a cluster (`namespace`, and `job` and `service` named after the
  metrics Services of a release called `genvid`), so the rules select the same series here.
  Tests that run their own api and operator add a file for them.
* `rules/*.yaml`: the chart's PrometheusRule rendered by helm for a namespace (the one source of
  the rules), one file per namespace; `reload` makes Prometheus read them again.

The binary is built without its web UI: the HTTP API (`/api/v1/...`) is all the stack needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from genvid_devstack.pki import Pki
from genvid_devstack.process import Process, StartupError, local_http, spawn, wait_http_ready
from genvid_devstack.state import REPO_ROOT, State

CHART = REPO_ROOT / "charts" / "genvid"
# The release name whose object names the target labels copy (the chart's fullname for it).
RELEASE = "genvid"
# Short, so a test sees a change within seconds; a cluster scrapes every 30 s.
INTERVAL = "2s"


@dataclass(frozen=True)
class Prometheus:
    url: str
    process: Process
    root: Path


def reload(url: str) -> None:
    """Make the Prometheus at `url` read its configuration, target and rule files again."""
    request = urllib.request.Request(f"{url}/-/reload", method="POST")
    with local_http.open(request, timeout=30) as response:
        if response.status != 200:
            raise StartupError(f"prometheus: reload answered {response.status}")


def directory(state_dir: Path) -> Path:
    return state_dir / "prometheus"


def target_groups(namespace: str, addresses: dict[str, str]) -> list[dict[str, Any]]:
    """File-discovery groups for GenVid components (`api`, `operator` -> host:port)."""
    groups = []
    for component, address in sorted(addresses.items()):
        service = f"{RELEASE}-{component}-metrics"
        labels = {"job": service, "service": service, "namespace": namespace}
        groups.append({"targets": [address], "labels": labels})
    return groups


def write_targets(state_dir: Path, name: str, groups: list[dict[str, Any]]) -> Path:
    path = directory(state_dir) / "targets" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")  # discovery must never read half a file
    temporary.write_text(json.dumps(groups, indent=2))
    os.replace(temporary, path)
    return path


def render_rules(helm: Path, namespace: str) -> dict[str, Any]:
    """The chart's PrometheusRule for `namespace`, as a Prometheus rule file."""
    kind = "monitoring.coreos.com/v1/PrometheusRule"
    result = subprocess.run(
        [
            str(helm),
            "template",
            RELEASE,
            str(CHART),
            f"--namespace={namespace}",
            "--set=prometheusRule.enabled=true",
            f"--api-versions={kind}",
            "--show-only=templates/prometheusrule.yaml",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StartupError(f"helm template (the alert rules): {result.stderr.strip()}")
    rule: dict[str, Any] = yaml.safe_load(result.stdout)
    return {"groups": rule["spec"]["groups"]}


def write_rules(state_dir: Path, namespace: str, rules: dict[str, Any]) -> Path:
    path = directory(state_dir) / "rules" / f"{namespace}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def _config(root: Path, apiserver: str | None, pki: Pki | None) -> dict[str, Any]:
    scrape: list[dict[str, Any]] = [
        {
            "job_name": "genvid",
            "file_sd_configs": [
                {"files": [str(root / "targets" / "*.json")], "refresh_interval": INTERVAL}
            ],
        }
    ]
    if apiserver and pki:
        scrape.append(
            {
                "job_name": "apiserver",
                "scheme": "https",
                "static_configs": [{"targets": [apiserver.removeprefix("https://")]}],
                "tls_config": {
                    "ca_file": str(pki.ca.cert),
                    "cert_file": str(pki.admin.cert),
                    "key_file": str(pki.admin.key),
                },
            }
        )
    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(root / "rules" / "*.yaml")],
        "scrape_configs": scrape,
    }


def start_prometheus(
    state: State,
    binary: Path,
    *,
    apiserver: str | None = None,
    pki: Pki | None = None,
) -> Prometheus:
    """Start Prometheus on a loopback port; targets and rules are written beside it."""
    root = directory(state.root)
    for folder in ("targets", "rules", "data"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    config = root / "prometheus.yml"
    config.write_text(yaml.safe_dump(_config(root, apiserver, pki), sort_keys=False))
    port = state.port("prometheus")
    url = f"http://127.0.0.1:{port}"
    process = spawn(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        log_dir=state.logs,
        cwd=root,
    )
    wait_http_ready(process, f"{url}/-/ready", timeout=60)
    return Prometheus(url=url, process=process, root=root)
