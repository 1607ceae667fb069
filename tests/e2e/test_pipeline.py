"""The generation pipeline end to end, on the real stack:
POST /generate -> VideoGeneration -> Job -> worker -> bucket -> Postgres and NATS -> SSE.

The first test drives the stack's own api, operator and synthetic worker (what `make dev`
runs). The others run their own operator and api on a namespace whose worker talks to the
fake Veo server through the real google-genai SDK, so each failure mode can be scripted.
"""

from __future__ import annotations

import io
import signal
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import av
import httpx
import pytest

from genvid_devstack import apps
from genvid_devstack.process import Process
from genvid_devstack.state import State
from genvid_devstack.veo import FakeVeo, start_fake_veo
from pipeline_support import (
    KUBECTL,
    GenVidClient,
    User,
    eventually,
    kubectl,
    kubectl_json,
    pid_alive,
)

pytestmark = pytest.mark.stack


def statuses(events: list[Any]) -> list[str]:
    return [event.data["status"] for event in events]


def fetch(url: str) -> bytes:
    response = httpx.get(url, timeout=30, trust_env=False)
    assert response.status_code == 200, response.text
    return response.content


async def job_row(database_url: str, generation_id: str) -> asyncpg.Record:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT * FROM video_generation_jobs WHERE id = $1", uuid.UUID(generation_id)
        )
    finally:
        await connection.close()
    assert row is not None
    return row


async def test_end_to_end_with_the_synthetic_worker(stack_env: dict[str, str]) -> None:
    user = GenVidClient(stack_env["GENVID_API_URL"]).new_user()
    generation = user.generate("a red fox running through fresh snow", duration_seconds=4)
    assert generation["status"] == "QUEUED"

    events = list(user.events(generation["id"]))
    assert statuses(events) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [event.id for event in events] == sorted({event.id for event in events})

    body = user.get(generation["id"])
    assert body["status"] == "SUCCEEDED"
    video = fetch(body["video_url"])
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate
        assert rate is not None
        assert abs(frames / float(rate) - 4.0) <= 1 / float(rate)
        assert (stream.width, stream.height) == (640, 360)
    assert fetch(body["poster_url"])[:3] == b"\xff\xd8\xff"

    phase = kubectl(
        stack_env["KUBECONFIG"], "-n", stack_env["GENVID_NAMESPACE"],
        "get", "videogenerations", generation["id"], "-o", "jsonpath={.status.phase}",
    )  # fmt: skip
    assert phase == "Succeeded"
    table = kubectl(stack_env["KUBECONFIG"], "-n", stack_env["GENVID_NAMESPACE"], "get", "vg")
    assert generation["id"] in table and "Succeeded" in table

    row = await job_row(stack_env["DATABASE_URL"], generation["id"])
    assert row["status"] == "SUCCEEDED"
    assert row["size_bytes"] == len(video)
    assert row["object_name"] in body["video_url"]
    assert row["object_name"].startswith(f"previews/{generation['id']}/preview_")
    assert row["event_seq"] == 3
    assert row["attempts"] == 1


# --- With Veo (the fake server, through the real SDK) ---------------------------------------

POLL_DEADLINE_SECONDS = 20


@dataclass
class Pipeline:
    env: dict[str, str]
    namespace: str
    state: State
    api_url: str
    veo: FakeVeo
    operator: Process

    def restart_operator(self) -> None:
        self.operator = apps.start_operator(self.state, self.env, self.namespace)

    def user(self) -> User:
        return GenVidClient(self.api_url).new_user()

    def kubectl(self, *args: str) -> str:
        return kubectl(self.env["KUBECONFIG"], "-n", self.namespace, *args)

    def pods(self, generation_id: str) -> list[dict[str, Any]]:
        listing = kubectl_json(
            self.env["KUBECONFIG"], "-n", self.namespace,
            "get", "pods", "-l", f"genvid.io/generation={generation_id}",
        )  # fmt: skip
        items: list[dict[str, Any]] = listing["items"]
        return items


@pytest.fixture(scope="module")
async def pipeline_database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    """A database of the pipeline's own: another api's outbox must not adopt its rows."""
    base = stack_env["DATABASE_URL"]
    name = f"genvid_e2e_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield urllib.parse.urlunsplit(urllib.parse.urlsplit(base)._replace(path=f"/{name}"))
    admin = await asyncpg.connect(base)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="module")
def pipeline(
    stack_env: dict[str, str],
    pipeline_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    state = State(tmp_path_factory.mktemp("pipeline"))
    state.prepare()
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    veo = start_fake_veo(state.logs, stack_env["STORAGE_EMULATOR_HOST"])
    worker_env = {
        "GENVID_BUCKET": stack_env["GENVID_BUCKET"],
        "STORAGE_EMULATOR_HOST": stack_env["STORAGE_EMULATOR_HOST"],
        "GENVID_PROVIDER": "veo",
        "GOOGLE_API_KEY": "test-key",
        "GENVID_VEO_BASE_URL": veo.base_url,
        "GENVID_POLL_INTERVAL_SECONDS": "0.3",
        "GENVID_POLL_DEADLINE_SECONDS": str(POLL_DEADLINE_SECONDS),
    }
    apps.kubectl_apply(
        KUBECTL, Path(stack_env["KUBECONFIG"]), apps.namespace_objects(namespace, worker_env)
    )
    env = {
        **stack_env,
        "DATABASE_URL": pipeline_database,
        "GENVID_OUTBOX_INTERVAL_SECONDS": "0.5",
        "GENVID_OUTBOX_GRACE_SECONDS": "1",
        "GENVID_SSE_HEARTBEAT_SECONDS": "1",
    }
    apps.migrate(env)
    operator = apps.start_operator(state, env, namespace)
    port = state.port("api")
    api = apps.start_api(state, env, namespace, port)
    pipeline = Pipeline(env, namespace, state, f"http://127.0.0.1:{port}", veo, operator)
    try:
        yield pipeline
    finally:
        api.stop()
        pipeline.operator.stop()
        veo.stop()


def test_veo_success_is_charged_once(pipeline: Pipeline) -> None:
    user = pipeline.user()
    prompt = f"a lighthouse at dusk {uuid.uuid4().hex[:6]}"
    generation = user.generate(prompt)
    assert statuses(list(user.events(generation["id"]))) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    body = user.get(generation["id"])
    assert Decimal(body["cost_usd"]) == Decimal("0.6")  # 4 s at the fast model's $0.15
    assert pipeline.veo.stats(prompt)["operations_started"] == 1
    with av.open(io.BytesIO(fetch(body["video_url"]))) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_veo_429_is_retried_with_backoff_then_succeeds(pipeline: Pipeline) -> None:
    user = pipeline.user()
    prompt = f"busy afternoon market {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, reject_first=1, reject_status=429)
    generation = user.generate(prompt)
    events = list(user.events(generation["id"]))
    assert statuses(events)[0] == "QUEUED"
    assert statuses(events)[-1] == "SUCCEEDED"
    retry = next(e for e in events if e.data["reason"] == "RateLimited")
    assert retry.data["status"] == "RUNNING"
    assert user.get(generation["id"])["attempts"] == 2
    assert pipeline.veo.stats(prompt)["operations_started"] == 1


def test_safety_filtered_prompt_fails_at_once_with_its_reason(pipeline: Pipeline) -> None:
    user = pipeline.user()
    prompt = f"something the filter blocks {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, outcome="safety_filtered")
    generation = user.generate(prompt)
    events = list(user.events(generation["id"]))
    assert statuses(events) == ["QUEUED", "RUNNING", "FAILED"]
    final = user.get(generation["id"])
    assert final["reason"] == "SafetyFiltered"
    assert "usage guidelines" in final["message"]
    assert final["attempts"] == 1
    assert Decimal(final["cost_usd"]) == 0
    assert final["video_url"] is None


def test_generation_that_never_finishes_fails_at_the_deadline(pipeline: Pipeline) -> None:
    user = pipeline.user()
    prompt = f"an endless staircase {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, outcome="never")
    generation = user.generate(prompt)
    final = user.wait_final(generation["id"], timeout=POLL_DEADLINE_SECONDS + 90)
    assert (final["status"], final["reason"]) == ("FAILED", "ProviderTimeout")
    assert final["attempts"] == 1


def running_worker_pid(pipeline: Pipeline, generation_id: str) -> int:
    def probe() -> int | None:
        for pod in pipeline.pods(generation_id):
            for container in pod.get("status", {}).get("containerStatuses") or []:
                if "running" in (container.get("state") or {}):
                    return int(container["containerID"].removeprefix("process://"))
        return None

    return eventually(probe, what="a running worker")


def test_cancel_while_running_kills_the_worker(pipeline: Pipeline) -> None:
    user = pipeline.user()
    prompt = f"a slow sunrise {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, outcome="never")
    generation = user.generate(prompt)
    stream = user.events(generation["id"])
    assert [next(stream).data["status"] for _ in range(2)] == ["QUEUED", "RUNNING"]
    pid = running_worker_pid(pipeline, generation["id"])

    assert user.cancel(generation["id"]).status_code == 202
    assert next(stream).data["status"] == "CANCELED"
    eventually(lambda: not pid_alive(pid), what="the worker process to end", timeout=60)
    assert user.get(generation["id"])["status"] == "CANCELED"
    assert user.cancel(generation["id"]).status_code == 409


async def test_operator_killed_mid_flight_loses_and_repeats_nothing(pipeline: Pipeline) -> None:
    user = pipeline.user()
    prompt = f"a paper boat on a river {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, polls_until_done=15)
    generation = user.generate(prompt)
    stream = user.events(generation["id"], limit=2)
    assert statuses(list(stream)) == ["QUEUED", "RUNNING"]

    pipeline.operator.popen.send_signal(signal.SIGKILL)
    pipeline.operator.stop()
    # The worker finishes while no operator is watching.
    eventually(
        lambda: any(
            p["status"].get("phase") == "Succeeded" for p in pipeline.pods(generation["id"])
        ),
        what="the worker to finish",
    )
    pipeline.restart_operator()

    events = list(user.events(generation["id"]))
    assert statuses(events) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [e.data["seq"] for e in events] == [1, 2, 3]
    jobs = pipeline.kubectl(
        "get", "jobs", "-l", f"genvid.io/generation={generation['id']}", "-o", "name"
    )
    assert len(jobs.split()) == 1
    assert len(pipeline.pods(generation["id"])) == 1
    row = await job_row(pipeline.env["DATABASE_URL"], generation["id"])
    assert (row["status"], row["event_seq"]) == ("SUCCEEDED", 3)


def test_sse_resumes_after_last_event_id_without_gaps_or_repeats(pipeline: Pipeline) -> None:
    user = pipeline.user()
    prompt = f"a hummingbird {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, polls_until_done=5)
    generation = user.generate(prompt)
    first = list(user.events(generation["id"], limit=1))
    assert statuses(first) == ["QUEUED"]
    rest = list(user.events(generation["id"], last_event_id=first[0].id))
    assert statuses(rest) == ["RUNNING", "SUCCEEDED"]
    assert all(event.id > first[0].id for event in rest)


async def test_job_inserted_by_an_api_that_crashed_before_creating_it_still_runs(
    pipeline: Pipeline,
) -> None:
    """As if the api died between its INSERT and creating the VideoGeneration."""
    user = pipeline.user()
    me = user.api.http.get("/me", headers=user.headers).json()
    generation_id = uuid.uuid4()
    connection = await asyncpg.connect(pipeline.env["DATABASE_URL"])
    try:
        await connection.execute(
            """INSERT INTO video_generation_jobs
               (id, user_id, prompt, model, duration_seconds, aspect_ratio, status,
                created_at, updated_at)
               VALUES ($1, $2, 'an orphaned request', 'veo-3.0-fast-generate-001', 4, '16:9',
                       'QUEUED', now() - interval '1 minute', now() - interval '1 minute')""",
            generation_id,
            uuid.UUID(me["id"]),
        )
    finally:
        await connection.close()
    final = user.wait_final(str(generation_id))
    assert final["status"] == "SUCCEEDED"
    assert pipeline.kubectl("get", "vg", str(generation_id), "-o", "name").strip()


def test_operator_exports_transition_metrics(pipeline: Pipeline) -> None:
    user = pipeline.user()
    generation = user.generate(f"a metered kite {uuid.uuid4().hex[:6]}")
    assert user.wait_final(generation["id"])["status"] == "SUCCEEDED"
    port = pipeline.state.port("operator-metrics")
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False).text
    assert 'genvid_generation_transitions_total{phase="Succeeded",reason="Generated"}' in text
    assert (
        'genvid_generations_finished_total{model="veo-3.0-fast-generate-001",phase="Succeeded"}'
        in text
    )
    assert "genvid_generation_queue_wait_seconds_count" in text
    assert "genvid_worker_jobs_created_total" in text
