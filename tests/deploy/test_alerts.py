"""The chart's alert rules, as `promtool` sees them: `check rules` accepts the rendered
PrometheusRule, and `test rules` shows every alert firing when it should and silent when it
should not, on made-up series. The rules are the chart's own output (helm template), the same
file the local stack's Prometheus loads; expected annotations are the rule's own, with the
value the case predicts written in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import REPO
from support.monitoring import chart_rules, promtool, rules_of

NS = "genvid"
OPERATOR = f'namespace="{NS}", job="genvid-operator-metrics", service="genvid-operator-metrics"'
API = f'namespace="{NS}", job="genvid-api-metrics", service="genvid-api-metrics"'
RUNBOOKS = REPO / "docs" / "runbooks"


@dataclass(frozen=True)
class Firing:
    """An alert expected at the case's evaluation time."""

    window: str | None = None
    labels: dict[str, str] = field(default_factory=lambda: {"namespace": NS})
    value: str = ""  # what `{{ $value }}` renders as in its annotations


@dataclass(frozen=True)
class Case:
    alert: str
    series: dict[str, str]
    at: str
    firing: list[Firing]


def finished(succeeded: int, failed: int) -> dict[str, str]:
    """Finished generations per minute, steadily."""
    labels = f'namespace="{NS}", job="genvid-operator-metrics", model="veo-3.0-fast-generate-001"'
    return {
        f'genvid_generations_finished_total{{{labels}, phase="SUCCEEDED"}}': f"0+{succeeded}x4400",
        f'genvid_generations_finished_total{{{labels}, phase="FAILED"}}': f"0+{failed}x4400",
    }


def requests(ok: int, errors: int) -> dict[str, str]:
    labels = f'{API}, method="GET", route="/feed"'
    return {
        f'genvid_api_http_requests_total{{{labels}, code="200"}}': f"0+{ok}x4400",
        f'genvid_api_http_requests_total{{{labels}, code="500"}}': f"0+{errors}x4400",
    }


def latency(fast: int, total: int) -> dict[str, str]:
    labels = f'{API}, method="GET", route="/feed"'
    name = "genvid_api_http_request_duration_seconds"
    return {
        f'{name}_bucket{{{labels}, le="0.5"}}': f"0+{fast}x4400",
        f"{name}_count{{{labels}}}": f"0+{total}x4400",
    }


def admission(waiting: int, held_by_user_caps: int, active: int, cap: int = 10) -> dict[str, str]:
    return {
        f"genvid_admission_waiting{{{OPERATOR}}}": f"{waiting}x30",
        f'genvid_admission_waiting_by_cap{{{OPERATOR}, cap="user"}}': f"{held_by_user_caps}x30",
        f"genvid_admission_active{{{OPERATOR}}}": f"{active}x30",
        f'genvid_admission_max_active{{{OPERATOR}, scope="global"}}': f"{cap}x30",
    }


def queue_waits(bucket: str) -> dict[str, str]:
    """One generation a minute waiting for a worker, each falling in `bucket`."""
    series = {}
    for le in ("1", "60", "300", "600", "+Inf"):
        counts = "0+1x40" if le == "+Inf" or float(le) >= float(bucket) else "0x40"
        series[f'genvid_generation_queue_wait_seconds_bucket{{{OPERATOR}, le="{le}"}}'] = counts
    return series


def budget(spent: int, reserved: int, limit: int, spent_period: int, period: int) -> dict[str, str]:
    return {
        f"genvid_budget_spent_usd{{{OPERATOR}}}": f"{spent}x10",
        f"genvid_budget_reserved_usd{{{OPERATOR}}}": f"{reserved}x10",
        f"genvid_budget_spent_period_start_timestamp_seconds{{{OPERATOR}}}": f"{spent_period}x10",
        f'genvid_budget_limit_usd{{{API}, scope="global"}}': f"{limit}x10",
        f'genvid_budget_limit_usd{{{API}, scope="user"}}': "20x10",
        f"genvid_budget_period_start_timestamp_seconds{{{API}}}": f"{period}x10",
    }


def throttled(per_minute: str) -> dict[str, str]:
    name = "genvid_generation_transitions_total"
    return {f'{name}{{{OPERATOR}, phase="RUNNING", reason="RateLimited"}}': f"0+{per_minute}x40"}


EVERY_WINDOW = ["1h", "6h", "1d", "3d"]


def burning_in_every_window(alert: str, series: dict[str, str], value: str) -> Case:
    """A budget burn fast enough for every window of the alert to fire, showing `value`."""
    return Case(alert, series, "2h", [Firing(window=w, value=value) for w in EVERY_WINDOW])


CASES = [
    Case("GenVidOperatorDown", {f"up{{{OPERATOR}}}": "0x10"}, "6m", [Firing(labels={})]),
    Case("GenVidOperatorDown", {f"up{{{API}}}": "1x10"}, "6m", [Firing(labels={})]),
    Case("GenVidOperatorDown", {f"up{{{OPERATOR}}}": "1x10"}, "6m", []),
    Case(
        "GenVidReconcileErrors",
        {f'genvid_reconcile_errors_total{{{OPERATOR}, trigger="job"}}': "0+1x40"},
        "35m",
        [Firing()],
    ),
    Case(
        "GenVidReconcileErrors",
        {f'genvid_reconcile_errors_total{{{OPERATOR}, trigger="job"}}': "0x40"},
        "35m",
        [],
    ),
    # 3 of 4 failing: every window burns (14.4 x 5 % = 72 % < 75 %).
    burning_in_every_window(
        "GenVidGenerationErrorBudgetBurn", finished(succeeded=1, failed=3), "75%"
    ),
    # 1 of 5 failing: only the slow, ticket-level windows (3x and 1x, not 14.4x or 6x).
    Case(
        "GenVidGenerationErrorBudgetBurn",
        finished(succeeded=4, failed=1),
        "2h",
        [Firing(window=w, value="20%") for w in ("1d", "3d")],
    ),
    Case("GenVidGenerationErrorBudgetBurn", finished(succeeded=49, failed=1), "2h", []),
    burning_in_every_window("GenVidApiErrorBudgetBurn", requests(ok=90, errors=10), "10%"),
    Case("GenVidApiErrorBudgetBurn", requests(ok=1000, errors=1), "2h", []),
    burning_in_every_window("GenVidApiLatencyBudgetBurn", latency(fast=50, total=100), "50%"),
    Case("GenVidApiLatencyBudgetBurn", latency(fast=100, total=100), "2h", []),
    Case(
        "GenVidQueueStuck",
        admission(waiting=3, held_by_user_caps=0, active=1),
        "11m",
        [Firing(value="3")],
    ),
    # Everyone waiting is held by their own user's cap: fair, not stuck.
    Case("GenVidQueueStuck", admission(waiting=3, held_by_user_caps=3, active=1), "11m", []),
    # Every place is taken.
    Case("GenVidQueueStuck", admission(waiting=3, held_by_user_caps=0, active=10), "11m", []),
    Case("GenVidQueueWaitHigh", queue_waits("600"), "35m", [Firing()]),
    Case("GenVidQueueWaitHigh", queue_waits("60"), "35m", []),
    Case("GenVidBudgetHigh", budget(80, 5, 100, 1000, 1000), "5m", [Firing(value="85%")]),
    Case("GenVidBudgetHigh", budget(70, 5, 100, 1000, 1000), "5m", []),
    # Yesterday's spend does not count once a new period has started.
    Case("GenVidBudgetHigh", budget(120, 0, 100, 1000, 87400), "5m", []),
    Case("GenVidBudgetExhausted", budget(100, 5, 100, 1000, 1000), "5m", [Firing()]),
    Case("GenVidBudgetExhausted", budget(85, 5, 100, 1000, 1000), "5m", []),
    Case("GenVidProviderThrottled", throttled("1"), "25m", [Firing()]),
    Case("GenVidProviderThrottled", throttled("0.2"), "25m", []),
]


def expected(rules: list[dict[str, Any]], case: Case, firing: Firing) -> dict[str, Any]:
    (rule,) = [
        r
        for r in rules
        if r.get("alert") == case.alert and r.get("labels", {}).get("window") == firing.window
    ]
    annotations = {
        key: text.replace("{{ $value | humanizePercentage }}", firing.value).replace(
            "{{ $value }}", firing.value
        )
        for key, text in rule["annotations"].items()
    }
    return {"exp_labels": {**rule["labels"], **firing.labels}, "exp_annotations": annotations}


@pytest.fixture(scope="module")
def rule_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "genvid.rules.yaml"
    path.write_text(yaml.safe_dump(chart_rules(NS), sort_keys=False))
    return path


def test_promtool_checks_the_rendered_rules(rule_file: Path) -> None:
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", str(rule_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_silent_as_promtool_tests_show(
    rule_file: Path, tmp_path: Path
) -> None:
    rules = rules_of(yaml.safe_load(rule_file.read_text()))
    alerts = {rule["alert"] for rule in rules if "alert" in rule}
    assert {case.alert for case in CASES if case.firing} == alerts
    assert {case.alert for case in CASES if not case.firing} == alerts
    tests = [
        {
            "name": f"{case.alert} #{number}",
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
            "alert_rule_test": [
                {
                    "eval_time": case.at,
                    "alertname": case.alert,
                    "exp_alerts": [expected(rules, case, firing) for firing in case.firing],
                }
            ],
        }
        for number, case in enumerate(CASES)
    ]
    document = {"rule_files": [str(rule_file)], "evaluation_interval": "1m", "tests": tests}
    test_file = tmp_path / "alerts.test.yaml"
    test_file.write_text(yaml.safe_dump(document, sort_keys=False))
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_links_a_runbook_of_the_repository(rule_file: Path) -> None:
    base = "https://github.com/genvid/genvid/blob/main/docs/runbooks/"
    for rule in rules_of(yaml.safe_load(rule_file.read_text())):
        if "alert" not in rule:
            continue
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(base), url
        runbook = RUNBOOKS / url.removeprefix(base)
        assert runbook.is_file(), f"{rule['alert']}: {runbook} is missing"
        assert rule["alert"] in runbook.read_text(), f"{runbook} does not name {rule['alert']}"
