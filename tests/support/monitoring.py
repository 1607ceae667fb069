"""The monitoring side of the tests: the pinned Go-built binaries, the chart's rules as
Prometheus loads them, the dashboards' queries, and questions to a real Prometheus."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from genvid_devstack.prometheus import render_rules
from support import REPO

DASHBOARDS = REPO / "dashboards"
# Grafana's interval variables, as a dashboard's query would see them over a short run.
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "10s", "$__range": "10m"}

Rule = dict[str, Any]


@functools.cache
def built_binary(name: str) -> Path:
    """A binary of `hack/build-binaries.sh` (`HELM`, `PROMTOOL`, ...), built by `make binaries`."""
    printed = subprocess.run(
        ["bash", str(REPO / "hack" / "build-binaries.sh"), "--print-env"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    paths = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    path = Path(paths[name])
    if not path.exists():
        raise AssertionError(f"{path} is missing: run `make binaries`")
    return path


def monitoring_crds() -> list[Path]:
    """The ServiceMonitor and PrometheusRule CRDs of the pinned Prometheus Operator, from the
    Go module proxy (cached in Go's module cache)."""
    versions = (REPO / "hack" / "versions.env").read_text()
    match = re.search(r"^PROMETHEUS_OPERATOR_VERSION=(\S+)$", versions, re.MULTILINE)
    assert match, "hack/versions.env pins no PROMETHEUS_OPERATOR_VERSION"
    module = f"github.com/prometheus-operator/prometheus-operator@{match.group(1)}"
    downloaded = subprocess.run(
        ["go", "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=mod"},
        cwd=REPO / "hack",
    )
    assert downloaded.returncode == 0, downloaded.stdout + downloaded.stderr
    crds = Path(json.loads(downloaded.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    return [
        crds / f"monitoring.coreos.com_{kind}.yaml"
        for kind in ("servicemonitors", "prometheusrules")
    ]


def chart_rules(namespace: str) -> dict[str, Any]:
    """The chart's PrometheusRule for `namespace` as a rule file (what the stack loads)."""
    return render_rules(built_binary("HELM"), namespace)


def rules_of(rule_file: dict[str, Any]) -> list[Rule]:
    return [rule for group in rule_file["groups"] for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(built_binary("PROMTOOL")), *args], capture_output=True, text=True, check=False
    )


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard of `dashboards/`, by file name."""
    return {
        path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("genvid-*.json"))
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # inside collapsed rows


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def resolve(expr: str, namespace: str) -> str:
    """A dashboard query as Grafana sends it, for one namespace."""
    expr = expr.replace("$namespace", namespace)
    for variable, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_families(exposition: str) -> set[str]:
    """The metric families a /metrics page declares (`# TYPE name kind`), with the sample
    names a family implies (_bucket, _count, _sum, _total, _created)."""
    names: set[str] = set()
    for match in re.finditer(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE):
        name, kind = match.groups()
        names.add(name)
        if kind == "counter":
            names.add(f"{name}_total")
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
    return names


class PromClient:
    """Prometheus' HTTP API (the stack's, at PROMETHEUS_URL)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _get(self, path: str, **params: str) -> Any:
        response = httpx.get(
            f"{self.url}{path}?{urllib.parse.urlencode(params)}", timeout=30, trust_env=False
        )
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector (a scalar comes back as one sample)."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def selectors(self, expr: str) -> list[str]:
        """The series selectors of `expr` (instant and range ones, from Prometheus' own
        parser), as instant queries written `name{matchers in their order}`."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") in ("vectorSelector", "matrixSelector"):
                    name = node.get("name") or ""
                    matchers = ", ".join(
                        f"{m['name']}{m['type']}{json.dumps(m['value'])}"
                        for m in node["matchers"]
                        if not (m["name"] == "__name__" and m["type"] == "=" and name)
                    )
                    found.append(f"{name}{{{matchers}}}")
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self._get("/api/v1/parse_query", query=expr))
        return found

    def metric_names(self, expr: str) -> set[str]:
        return {selector.split("{", 1)[0] for selector in self.selectors(expr)} - {""}

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._get("/api/v1/rules")["groups"]
        return groups

    def series(self, match: str) -> list[dict[str, str]]:
        result: list[dict[str, str]] = self._get("/api/v1/series", **{"match[]": match})
        return result
