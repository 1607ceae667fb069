"""The Grafana dashboards (dashboards/*.json): they keep to the schema of the model they use
and to the grid, and the chart ships exactly these files as sidecar ConfigMaps; with every
monitoring toggle on, the chart's output passes a server-side dry run on the local apiserver
with the Prometheus Operator's CRDs applied."""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

import jsonschema_rs
import pytest
import yaml

from support.chart import render, template
from support.kube import Kubectl
from support.monitoring import DASHBOARDS, dashboards, monitoring_crds, panels

MONITORING = [
    "--set=dashboards.enabled=true,prometheusRule.enabled=true,serviceMonitor.enabled=true",
    "--api-versions=monitoring.coreos.com/v1/PrometheusRule",
    "--api-versions=monitoring.coreos.com/v1/ServiceMonitor",
]


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_a_dashboard_keeps_to_its_schema_and_the_grid(name: str) -> None:
    schema = json.loads((DASHBOARDS / "dashboard.schema.json").read_text())
    dashboard = dashboards()[name]
    jsonschema_rs.validator_for(schema).validate(dashboard)

    every = list(panels(dashboard))
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
    for panel in every:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, f"{name}: {panel['title']} leaves the grid"

    def cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
        box = panel["gridPos"]
        return {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }

    for one, other in combinations(every, 2):
        assert not cells(one) & cells(other), f"{name}: {one['title']} overlaps {other['title']}"


def test_dashboard_uids_are_unique() -> None:
    uids = [dashboard["uid"] for dashboard in dashboards().values()]
    assert len(uids) == len(set(uids)) == 2


def test_the_chart_ships_the_dashboards_as_sidecar_config_maps() -> None:
    def dashboard_maps(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            d
            for d in docs
            if d["kind"] == "ConfigMap"
            and d["metadata"]["labels"].get("app.kubernetes.io/component") == "dashboards"
        ]

    assert dashboard_maps(render()) == []
    maps = dashboard_maps(render(*MONITORING))
    assert len(maps) == 2
    shipped = {}
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "GenVid"}
        shipped.update(config_map["data"])
    files = {path.name: path.read_text().rstrip("\n") for path in DASHBOARDS.glob("genvid-*.json")}
    assert shipped == files


def test_monitoring_objects_pass_server_side_dry_run(kubectl: Kubectl, namespace: str) -> None:
    for crd in monitoring_crds():
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd), check=True)
    for crd in ("servicemonitors", "prometheusrules"):
        kubectl(
            "wait", "--for=condition=Established", f"crd/{crd}.monitoring.coreos.com", check=True
        )
    rendered = template(*MONITORING, namespace=namespace)
    assert rendered.returncode == 0, rendered.stderr
    kinds = {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Service"}
    objects = [d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] in kinds]
    assert {d["kind"] for d in objects} == kinds
    document = yaml.safe_dump_all(objects)
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=document)
    assert result.returncode == 0, result.stderr
    for name in (
        "servicemonitor.monitoring.coreos.com/genvid-operator",
        "servicemonitor.monitoring.coreos.com/genvid-api",
        "prometheusrule.monitoring.coreos.com/genvid-operator",
        "configmap/genvid-dashboard-overview",
        "configmap/genvid-dashboard-operator",
        "service/genvid-api-metrics",
    ):
        assert name in result.stdout, result.stdout
