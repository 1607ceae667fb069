"""The generation pipeline end to end, on the real stack:
POST /generate -> VideoGeneration -> Job -> worker -> bucket -> Postgres and NATS -> SSE.

The first test drives the stack's own api, operator and synthetic worker (what `make dev`
runs). The others run their own operator and api on a namespace whose worker talks to the
fake Veo server through the real google-genai SDK, so each failure mode can be scripted.
"""

from __future__ import annotations

import contextlib
import io
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import av
import pytest

from genvid_devstack import apps
from genvid_devstack.process import Process
from genvid_devstack.state import State
from genvid_devstack.veo import FakeVeo, start_fake_veo
from support.api import Account, ApiClient, api_http_client
from support.job_stream import TERMINAL
from support.kube import KUBECTL, kubectl, kubectl_json
from support.polling import eventually
from support.processes import pid_alive
from support.sse import SseEvent, SseReader, sse

pytestmark = pytest.mark.stack

EVENT_SECONDS = 120  # a worker retried with backoff may be silent for a while


def statuses(events: list[SseEvent]) -> list[str]:
    return [event.data["status"] for event in events]


async def fetch(client: ApiClient, url: str) -> bytes:
    """An absolute URL (a signed one of the bucket, a metrics endpoint) through the client."""
    response = await client.http.get(url)
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


async def generate(client: ApiClient, account: Account, prompt: str, **body: Any) -> str:
    response = await client.generate(account, prompt=prompt, **body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "QUEUED"
    generation_id: str = response.json()["id"]
    return generation_id


async def get(client: ApiClient, account: Account, generation_id: str) -> dict[str, Any]:
    response = await client.http.get(f"/generations/{generation_id}", headers=account.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def cancel(client: ApiClient, account: Account, generation_id: str) -> int:
    response = await client.http.post(f"/generations/{generation_id}/cancel", headers=account.auth)
    return response.status_code


def event_stream(
    client: ApiClient, account: Account, generation_id: str, last_event_id: str | None = None
) -> contextlib.AbstractAsyncContextManager[SseReader]:
    headers = dict(account.auth)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return sse(client.http, f"/generations/{generation_id}/events", headers)


async def until_final(reader: SseReader, limit: int | None = None) -> list[SseEvent]:
    """Events up to a final status, `limit` events, or the stream's end."""
    events: list[SseEvent] = []
    while (event := await reader.next_event(EVENT_SECONDS)) is not None:
        events.append(event)
        if event.data.get("status") in TERMINAL or len(events) == limit:
            break
    return events


async def events(
    client: ApiClient,
    account: Account,
    generation_id: str,
    *,
    last_event_id: str | None = None,
    limit: int | None = None,
) -> list[SseEvent]:
    async with event_stream(client, account, generation_id, last_event_id) as reader:
        return await until_final(reader, limit)


async def wait_final(
    client: ApiClient, account: Account, generation_id: str, seconds: float = 120
) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        body = await get(client, account, generation_id)
        return body if body["status"] in TERMINAL else None

    return await eventually(
        finished, what=f"generation {generation_id} to finish", seconds=seconds, interval=0.25
    )


async def test_end_to_end_with_the_synthetic_worker(
    stack_env: dict[str, str], stack_api: ApiClient
) -> None:
    user = await stack_api.register("u")
    generation_id = await generate(
        stack_api, user, "a red fox running through fresh snow", duration_seconds=4
    )

    seen = await events(stack_api, user, generation_id)
    assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    ids = [int(event.id or "") for event in seen]
    assert ids == sorted(set(ids))

    body = await get(stack_api, user, generation_id)
    assert body["status"] == "SUCCEEDED"
    video = await fetch(stack_api, body["video_url"])
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate
        assert rate is not None
        assert abs(frames / float(rate) - 4.0) <= 1 / float(rate)
        assert (stream.width, stream.height) == (640, 360)
    assert (await fetch(stack_api, body["poster_url"]))[:3] == b"\xff\xd8\xff"

    kubeconfig, namespace = stack_env["KUBECONFIG"], stack_env["GENVID_NAMESPACE"]
    phase = kubectl(
        kubeconfig, "-n", namespace,
        "get", "videogenerations", generation_id, "-o", "jsonpath={.status.phase}",
    ).stdout  # fmt: skip
    assert phase == "Succeeded"
    table = kubectl(kubeconfig, "-n", namespace, "get", "vg").stdout
    assert generation_id in table and "Succeeded" in table

    row = await job_row(stack_env["DATABASE_URL"], generation_id)
    assert row["status"] == "SUCCEEDED"
    assert row["size_bytes"] == len(video)
    assert row["object_name"] in body["video_url"]
    assert row["object_name"].startswith(f"previews/{generation_id}/preview_")
    assert row["event_seq"] == 3
    assert row["attempts"] == 1


# --- With Veo (the fake server, through the real SDK) ---------------------------------------

POLL_DEADLINE_SECONDS = 20


@dataclass
class Pipeline:
    env: dict[str, str]
    namespace: str
    state: State
    api: ApiClient
    veo: FakeVeo
    operator: Process

    def restart_operator(self) -> None:
        self.operator = apps.start_operator(self.state, self.env, self.namespace)

    def kubectl(self, *args: str) -> str:
        return kubectl(self.env["KUBECONFIG"], "-n", self.namespace, *args).stdout

    def pods(self, generation_id: str) -> list[dict[str, Any]]:
        listing = kubectl_json(
            self.env["KUBECONFIG"], "-n", self.namespace,
            "get", "pods", "-l", f"genvid.io/generation={generation_id}",
        )  # fmt: skip
        items: list[dict[str, Any]] = listing["items"]
        return items


@pytest.fixture(scope="module")
async def pipeline(
    stack_env: dict[str, str],
    pipeline_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Pipeline]:
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
    try:
        async with api_http_client(f"http://127.0.0.1:{port}") as http:
            yield Pipeline(env, namespace, state, ApiClient(http=http), veo, operator)
    finally:
        api.stop()
        operator.stop()
        veo.stop()


async def test_veo_success_is_charged_once(pipeline: Pipeline) -> None:
    client = pipeline.api
    user = await client.register("u")
    prompt = f"a lighthouse at dusk {uuid.uuid4().hex[:6]}"
    generation_id = await generate(client, user, prompt)
    assert statuses(await events(client, user, generation_id)) == [
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
    ]
    body = await get(client, user, generation_id)
    assert Decimal(body["cost_usd"]) == Decimal("0.6")  # 4 s at the fast model's $0.15
    assert pipeline.veo.stats(prompt)["operations_started"] == 1
    with av.open(io.BytesIO(await fetch(client, body["video_url"]))) as container:
        assert container.streams.video[0].codec_context.name == "h264"


async def test_veo_429_is_retried_with_backoff_then_succeeds(pipeline: Pipeline) -> None:
    client = pipeline.api
    user = await client.register("u")
    prompt = f"busy afternoon market {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, reject_first=1, reject_status=429)
    generation_id = await generate(client, user, prompt)
    seen = await events(client, user, generation_id)
    assert statuses(seen)[0] == "QUEUED"
    assert statuses(seen)[-1] == "SUCCEEDED"
    retry = next(e for e in seen if e.data["reason"] == "RateLimited")
    assert retry.data["status"] == "RUNNING"
    assert (await get(client, user, generation_id))["attempts"] == 2
    assert pipeline.veo.stats(prompt)["operations_started"] == 1


async def test_safety_filtered_prompt_fails_at_once_with_its_reason(pipeline: Pipeline) -> None:
    client = pipeline.api
    user = await client.register("u")
    prompt = f"something the filter blocks {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, outcome="safety_filtered")
    generation_id = await generate(client, user, prompt)
    seen = await events(client, user, generation_id)
    assert statuses(seen) == ["QUEUED", "RUNNING", "FAILED"]
    final = await get(client, user, generation_id)
    assert final["reason"] == "SafetyFiltered"
    assert "usage guidelines" in final["message"]
    assert final["attempts"] == 1
    assert Decimal(final["cost_usd"]) == 0
    assert final["video_url"] is None


async def test_generation_that_never_finishes_fails_at_the_deadline(pipeline: Pipeline) -> None:
    client = pipeline.api
    user = await client.register("u")
    prompt = f"an endless staircase {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, outcome="never")
    generation_id = await generate(client, user, prompt)
    final = await wait_final(client, user, generation_id, seconds=POLL_DEADLINE_SECONDS + 90)
    assert (final["status"], final["reason"]) == ("FAILED", "ProviderTimeout")
    assert final["attempts"] == 1


async def running_worker_pid(pipeline: Pipeline, generation_id: str) -> int:
    def probe() -> int | None:
        for pod in pipeline.pods(generation_id):
            for container in pod.get("status", {}).get("containerStatuses") or []:
                if "running" in (container.get("state") or {}):
                    return int(container["containerID"].removeprefix("process://"))
        return None

    return await eventually(probe, what="a running worker", seconds=90, interval=0.25)


async def test_cancel_while_running_kills_the_worker(pipeline: Pipeline) -> None:
    client = pipeline.api
    user = await client.register("u")
    prompt = f"a slow sunrise {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, outcome="never")
    generation_id = await generate(client, user, prompt)
    async with event_stream(client, user, generation_id) as stream:
        assert statuses(await until_final(stream, limit=2)) == ["QUEUED", "RUNNING"]
        pid = await running_worker_pid(pipeline, generation_id)

        assert await cancel(client, user, generation_id) == 202
        assert statuses(await until_final(stream, limit=1)) == ["CANCELED"]
    await eventually(
        lambda: not pid_alive(pid), what="the worker process to end", seconds=60, interval=0.25
    )
    assert (await get(client, user, generation_id))["status"] == "CANCELED"
    assert await cancel(client, user, generation_id) == 409


async def test_operator_killed_mid_flight_loses_and_repeats_nothing(pipeline: Pipeline) -> None:
    client = pipeline.api
    user = await client.register("u")
    prompt = f"a paper boat on a river {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, polls_until_done=15)
    generation_id = await generate(client, user, prompt)
    assert statuses(await events(client, user, generation_id, limit=2)) == ["QUEUED", "RUNNING"]

    pipeline.operator.popen.send_signal(signal.SIGKILL)
    pipeline.operator.stop()
    # The worker finishes while no operator is watching.
    await eventually(
        lambda: any(p["status"].get("phase") == "Succeeded" for p in pipeline.pods(generation_id)),
        what="the worker to finish",
        seconds=90,
        interval=0.25,
    )
    pipeline.restart_operator()

    seen = await events(client, user, generation_id)
    assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [e.data["seq"] for e in seen] == [1, 2, 3]
    jobs = pipeline.kubectl(
        "get", "jobs", "-l", f"genvid.io/generation={generation_id}", "-o", "name"
    )
    assert len(jobs.split()) == 1
    assert len(pipeline.pods(generation_id)) == 1
    row = await job_row(pipeline.env["DATABASE_URL"], generation_id)
    assert (row["status"], row["event_seq"]) == ("SUCCEEDED", 3)


async def test_sse_resumes_after_last_event_id_without_gaps_or_repeats(
    pipeline: Pipeline,
) -> None:
    client = pipeline.api
    user = await client.register("u")
    prompt = f"a hummingbird {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, polls_until_done=5)
    generation_id = await generate(client, user, prompt)
    first = await events(client, user, generation_id, limit=1)
    assert statuses(first) == ["QUEUED"]
    rest = await events(client, user, generation_id, last_event_id=first[0].id)
    assert statuses(rest) == ["RUNNING", "SUCCEEDED"]
    assert all(int(event.id or "") > int(first[0].id or "") for event in rest)


async def test_job_inserted_by_an_api_that_crashed_before_creating_it_still_runs(
    pipeline: Pipeline,
) -> None:
    """As if the api died between its INSERT and creating the VideoGeneration."""
    client = pipeline.api
    user = await client.register("u")
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
            uuid.UUID(user.user_id),
        )
    finally:
        await connection.close()
    final = await wait_final(client, user, str(generation_id))
    assert final["status"] == "SUCCEEDED"
    assert pipeline.kubectl("get", "vg", str(generation_id), "-o", "name").strip()


async def test_operator_exports_transition_metrics(pipeline: Pipeline) -> None:
    client = pipeline.api
    user = await client.register("u")
    generation_id = await generate(client, user, f"a metered kite {uuid.uuid4().hex[:6]}")
    assert (await wait_final(client, user, generation_id))["status"] == "SUCCEEDED"
    port = pipeline.state.port("operator-metrics")
    text = (await fetch(client, f"http://127.0.0.1:{port}/metrics")).decode()
    assert 'genvid_generation_transitions_total{phase="Succeeded",reason="Generated"}' in text
    assert (
        'genvid_generations_finished_total{model="veo-3.0-fast-generate-001",phase="Succeeded"}'
        in text
    )
    assert "genvid_generation_queue_wait_seconds_count" in text
    assert "genvid_worker_jobs_created_total" in text
