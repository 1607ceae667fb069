"""Observability end to end: the stack's real Prometheus scrapes this module's own api and
operator (the `pipeline` fixture, whose worker talks to the fake Veo) and evaluates the chart's
rules rendered for its namespace. After a run of generations that succeed, fail, are throttled,
are canceled, wait for capacity or are refused, every query of every dashboard panel and every
recording rule returns data, every selector of every alert finds series (pint's series check),
and every metric they name is served by the api or the operator; the exceptions are listed
once, in LEGITIMATELY_EMPTY, with the reason. Then 200 generations of 50 users leave no series
labelled with a user, a generation or a raw path. On the way: `kubectl get vg` names the
owner, and `kubectl describe vg` tells the story in Events.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from genvid_devstack import prometheus
from support.api import Account
from support.job_stream import TERMINAL
from support.kube import kubectl, kubectl_json
from support.monitoring import (
    PromClient,
    chart_rules,
    dashboards,
    metric_families,
    panel_queries,
    resolve,
    rules_of,
)
from support.pipeline import Generation, Pipeline, PipelineSettings, submit
from support.polling import eventually

pytestmark = pytest.mark.stack

# Four 4-second fast generations at $0.60 fit; a fifth (3.00) does not: it is refused (402).
USER_BUDGET_USD = "2.5"

# Expressions (a panel's or rule's query after `resolve`, or one selector of it with the
# namespace written as NS) that may return nothing after the run, and why. The one list.
LEGITIMATELY_EMPTY = {
    'genvid_api_http_requests_total{namespace="NS", code=~"5.."}': (
        "5xx answers: a healthy run has none (the api availability alert's numerator)"
    ),
}

NAMESPACE_RE = re.compile(r'namespace="[^"]+"')
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def pipeline_settings() -> PipelineSettings:
    return PipelineSettings(
        env={
            "GENVID_GLOBAL_MAX_ACTIVE": "2",
            "GENVID_USER_MAX_ACTIVE": "1",
            "GENVID_ADMISSION_INTERVAL_SECONDS": "0.5",
            "GENVID_RESYNC_SECONDS": "5",
            "GENVID_USER_DAILY_BUDGET_USD": USER_BUDGET_USD,
            "GENVID_GENERATE_PER_MINUTE": "100",
            # 50 users register from this one address: the auth limits would refuse them.
            "GENVID_RATE_LIMITS": "off",
        }
    )


@dataclass(frozen=True)
class Observed:
    pipeline: Pipeline
    prom: PromClient
    metrics_urls: tuple[str, str]  # the api's and the operator's /metrics

    @property
    def namespace(self) -> str:
        return self.pipeline.namespace

    def scraped(self) -> str:
        return "\n".join(httpx.get(url, timeout=10).text for url in self.metrics_urls)


@pytest.fixture(scope="module")
def observed(pipeline: Pipeline, stack_state: Path, stack_env: dict[str, str]) -> Observed:
    """The pipeline's api and operator as scrape targets of the stack's Prometheus, with the
    chart's rules for its namespace, as the chart's ServiceMonitors and PrometheusRule would
    make them in a cluster."""
    ns = pipeline.namespace
    api = f"127.0.0.1:{pipeline.state.port('api-metrics')}"
    operator = f"127.0.0.1:{pipeline.state.port('operator-metrics')}"
    prometheus.write_targets(
        stack_state, ns, prometheus.target_groups(ns, {"api": api, "operator": operator})
    )
    prometheus.write_rules(stack_state, ns, chart_rules(ns))
    prometheus.reload(stack_env["PROMETHEUS_URL"])
    return Observed(
        pipeline,
        PromClient(stack_env["PROMETHEUS_URL"]),
        (f"http://{api}/metrics", f"http://{operator}/metrics"),
    )


async def test_the_stack_prometheus_loads_the_charts_rules(
    stack_state: Path, stack_env: dict[str, str]
) -> None:
    on_disk = yaml.safe_load((stack_state / "prometheus" / "rules" / "genvid.yaml").read_text())
    assert on_disk == chart_rules(stack_env["GENVID_NAMESPACE"])
    loaded = {
        (group["name"], rule["name"])
        for group in PromClient(stack_env["PROMETHEUS_URL"]).rules()
        if group["file"].endswith("/genvid.yaml")
        for rule in group["rules"]
    }
    rendered = {
        (group["name"], rule.get("record") or rule["alert"])
        for group in on_disk["groups"]
        for rule in group["rules"]
    }
    assert loaded == rendered


async def test_targets_are_scraped_with_the_chart_labels(observed: Observed) -> None:
    async def up() -> list[dict[str, Any]] | None:
        result = observed.prom.query(f'up{{namespace="{observed.namespace}"}} == 1')
        return result if len(result) == 2 else None

    result = await eventually(up, what="both targets up", seconds=30, interval=1)
    assert {sample["metric"]["service"] for sample in result} == {
        "genvid-api-metrics",
        "genvid-operator-metrics",
    }


async def run_generations(observed: Observed) -> list[Generation]:
    """Success, throttled then success, permanent failure, cancel, waiting, refused, 401."""
    pipeline = observed.pipeline
    success, _ = await pipeline.generate("a lighthouse at dusk")
    throttled, _ = await pipeline.generate("a kite over dunes", reject_first=1, reject_status=429)
    failed, _ = await pipeline.generate("an invalid request", reject_first=9, reject_status=400)
    slow, _ = await pipeline.generate("a slow glacier", polls_until_done=200)
    spender = await pipeline.api.register("spender")
    # One user, one at a time: the others wait for capacity; the fifth does not fit the budget.
    queued = [await submit(pipeline.api, spender, f"queue {n}") for n in range(4)]
    refused = await pipeline.api.generate(spender, prompt="one too many")
    assert refused.status_code == 402, refused.text
    assert (await pipeline.api.http.get("/generations")).status_code == 401

    async def with_status(generation: Generation, status: str, reason: str | None = None) -> bool:
        body = await generation.get()
        return body["status"] == status and reason in (None, body["reason"])

    await eventually(
        lambda: with_status(queued[-1], "QUEUED", "WaitingForCapacity"),
        what="a generation waiting for capacity",
        seconds=30,
        interval=0.5,
    )
    await eventually(
        lambda: with_status(slow, "RUNNING"), what="the slow one running", seconds=90, interval=0.5
    )
    assert await slow.cancel() == 202
    events = await success.events()  # an SSE stream, read to its end
    assert [event.data["status"] for event in events][-1] == "SUCCEEDED"
    finals = [await g.wait_final(240) for g in (success, throttled, failed, slow, *queued)]
    assert [body["status"] for body in finals[:4]] == [
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
        "CANCELED",
    ]
    assert (await success.get())["video_url"]  # signed for this answer
    return [success, throttled, failed, slow, *queued]


@pytest.fixture(scope="module")
async def after_a_run(observed: Observed) -> Observed:
    await run_generations(observed)
    ns = observed.namespace

    def settled() -> bool:
        # Scraped after the last finish, and the slowest rules evaluated on it.
        finished = observed.prom.query(
            f'sum(genvid_generations_finished_total{{namespace="{ns}"}})'
        )
        budget = observed.prom.query(f'namespace:genvid_budget_used:ratio{{namespace="{ns}"}}')
        return bool(finished) and float(finished[0]["value"][1]) >= 8 and bool(budget)

    await eventually(settled, what="Prometheus to see the run", seconds=60, interval=1)
    await asyncio.sleep(5)  # two more scrapes and rule evaluations
    return observed


def generalized(expr: str) -> str:
    return NAMESPACE_RE.sub('namespace="NS"', expr)


async def test_every_dashboard_query_returns_data(after_a_run: Observed) -> None:
    ns = after_a_run.namespace
    empty = []
    checked = 0
    for name, dashboard in dashboards().items():
        for title, expr in panel_queries(dashboard):
            query = resolve(expr, ns)
            checked += 1
            if not after_a_run.prom.query(query) and generalized(query) not in LEGITIMATELY_EMPTY:
                empty.append(f"{name} / {title}: {query}")
    assert checked >= 40
    assert not empty, "queries without data:\n" + "\n".join(empty)


async def test_every_rule_is_evaluated_and_its_series_exist(after_a_run: Observed) -> None:
    ns = after_a_run.namespace
    rules = rules_of(chart_rules(ns))
    problems = []
    for rule in rules:
        name = rule.get("record") or rule["alert"]
        after_a_run.prom.query(rule["expr"])  # evaluates without error
        if "record" in rule and not after_a_run.prom.query(f'{name}{{namespace="{ns}"}}'):
            problems.append(f"recording rule {name} has no series")
        for selector in after_a_run.prom.selectors(rule["expr"]):
            if "__name__=~" in selector or generalized(selector) in LEGITIMATELY_EMPTY:
                continue
            if not after_a_run.prom.query(selector):
                problems.append(f"{name}: {selector} selects nothing")
    assert not problems, "\n".join(problems)
    # Every exception is still needed: an entry nothing uses must go.
    used = {
        generalized(selector)
        for rule in rules
        for selector in after_a_run.prom.selectors(rule["expr"])
    } | {
        generalized(resolve(expr, ns))
        for d in dashboards().values()
        for _, expr in panel_queries(d)
    }
    assert set(LEGITIMATELY_EMPTY) <= used


async def test_every_metric_used_is_served(after_a_run: Observed) -> None:
    ns = after_a_run.namespace
    served = metric_families(after_a_run.scraped())
    recorded = {rule["record"] for rule in rules_of(chart_rules(ns)) if "record" in rule}
    expressions = [rule["expr"] for rule in rules_of(chart_rules(ns))] + [
        resolve(expr, ns) for d in dashboards().values() for _, expr in panel_queries(d)
    ]
    used = set().union(*(after_a_run.prom.metric_names(expr) for expr in expressions))
    assert used - recorded - {"up"} <= served, sorted(used - recorded - {"up"} - served)
    assert len(used) >= 30


async def test_kubectl_shows_the_owner_and_the_story(after_a_run: Observed) -> None:
    pipeline = after_a_run.pipeline
    user = await pipeline.api.register("viewer")
    generation = await submit(pipeline.api, user, "a quiet harbour")
    await generation.wait_final(120)
    kubeconfig, ns = pipeline.env["KUBECONFIG"], pipeline.namespace
    table = kubectl(kubeconfig, "-n", ns, "get", "videogenerations", generation.id).stdout
    header, row = table.splitlines()
    owner = row.split()[header.split().index("OWNER")]
    assert owner == user.username

    async def story() -> list[str] | None:
        events = kubectl_json(
            kubeconfig, "-n", ns, "get", "events",
            "--field-selector", f"involvedObject.name={generation.id}",
        )["items"]  # fmt: skip
        messages = [event["message"] for event in events]
        return messages if any("-> SUCCEEDED" in m for m in messages) else None

    messages = await eventually(story, what="the transitions' Events", seconds=30, interval=1)
    assert any(m.startswith("new -> QUEUED") for m in messages), messages
    assert any("QUEUED -> RUNNING" in m for m in messages), messages
    described = kubectl(kubeconfig, "-n", ns, "describe", "vg", generation.id).stdout
    assert "RUNNING -> SUCCEEDED" in described


async def test_no_series_is_labelled_with_a_user_a_generation_or_a_path(
    after_a_run: Observed,
) -> None:
    pipeline = after_a_run.pipeline
    users: list[Account] = [await pipeline.api.register("many") for _ in range(50)]

    async def four(user: Account) -> list[str]:
        ids = []
        for n in range(4):
            response = await pipeline.api.generate(user, prompt=f"many {n}", duration_seconds=1)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        return ids

    ids = [gid for batch in await asyncio.gather(*(four(u) for u in users)) for gid in batch]
    assert len(ids) == 200
    for user, start in zip(users, range(0, 200, 4), strict=True):
        for gid in ids[start : start + 4]:
            gone = await pipeline.api.http.post(f"/generations/{gid}/cancel", headers=user.auth)
            assert gone.status_code in (202, 409), gone.text
            # A path per generation, so raw paths would show as route labels.
            seen = await pipeline.api.http.get(f"/generations/{gid}", headers=user.auth)
            assert seen.status_code == 200
    await pipeline.api.http.get(f"/no/such/{uuid.uuid4()}")

    def all_final() -> bool:
        items = pipeline.get("videogenerations")["items"]
        return all((vg.get("status") or {}).get("phase") in TERMINAL for vg in items)

    await eventually(all_final, what="200 generations to finish", seconds=600, interval=3)
    await asyncio.sleep(5)  # scraped since

    identities = {u.user_id for u in users} | {u.username for u in users} | set(ids)
    identities |= {u.email for u in users}
    series = after_a_run.prom.series(f'{{namespace="{after_a_run.namespace}"}}')
    exposed = after_a_run.scraped()
    offending = []
    for labels in series:
        if any(v in identities or UUID_RE.search(v) or "/no/" in v for v in labels.values()):
            offending.append(labels)
    for line in exposed.splitlines():
        if not line.startswith("#") and (
            UUID_RE.search(line) or any(i in line for i in identities)
        ):
            offending.append({"line": line})
    assert not offending, offending[:10]
    routes = {s["route"] for s in series if "route" in s}
    assert "<unmatched>" in routes and "/generations/{generation_id}" in routes
    assert len(series) < 2000, len(series)  # bounded, whatever the number of users
