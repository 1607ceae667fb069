"""The generation pipeline end to end, on the real stack:
POST /generate -> VideoGeneration -> Job -> worker -> bucket -> Postgres and NATS -> SSE.

The first test drives the stack's own api, operator and synthetic worker (what `make dev`
runs). The others run their own operator and api on a namespace whose worker talks to the
fake Veo server through the real google-genai SDK, so each failure mode can be scripted.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import av
import pytest

from support.api import ApiClient
from support.jobs import insert_job
from support.kube import kubectl
from support.pipeline import (
    Generation,
    Pipeline,
    PipelineSettings,
    generate,
    job_row,
    running_worker_pid,
    statuses,
    until_final,
)
from support.polling import eventually
from support.processes import pid_alive

pytestmark = pytest.mark.stack


async def fetch(client: ApiClient, url: str) -> bytes:
    """An absolute URL (a signed one of the bucket, a metrics endpoint) through the client."""
    response = await client.http.get(url)
    assert response.status_code == 200, response.text
    return response.content


async def test_end_to_end_with_the_synthetic_worker(
    stack_env: dict[str, str], stack_api: ApiClient
) -> None:
    generation = await generate(
        stack_api, "a red fox running through fresh snow", duration_seconds=4
    )

    seen = await generation.events()
    assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    ids = [int(event.id or "") for event in seen]
    assert ids == sorted(set(ids))

    body = await generation.get()
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
        "get", "videogenerations", generation.id, "-o", "jsonpath={.status.phase}",
    ).stdout  # fmt: skip
    assert phase == "SUCCEEDED"
    table = kubectl(kubeconfig, "-n", namespace, "get", "vg").stdout
    assert generation.id in table and "SUCCEEDED" in table

    row = await job_row(stack_env["DATABASE_URL"], generation.id)
    assert row["status"] == "SUCCEEDED"
    assert row["size_bytes"] == len(video)
    assert row["object_name"] in body["video_url"]
    assert row["object_name"].startswith(f"previews/{generation.id}/preview_")
    assert row["event_seq"] == 3
    assert row["attempts"] == 1


# --- With Veo (the fake server, through the real SDK) ---------------------------------------

POLL_DEADLINE_SECONDS = 20


@pytest.fixture(scope="module")
def pipeline_settings() -> PipelineSettings:
    return PipelineSettings(worker={"GENVID_POLL_DEADLINE_SECONDS": str(POLL_DEADLINE_SECONDS)})


async def test_veo_success_is_charged_once(pipeline: Pipeline) -> None:
    generation, prompt = await pipeline.generate("a lighthouse at dusk")
    assert statuses(await generation.events()) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    body = await generation.get()
    assert Decimal(body["cost_usd"]) == Decimal("0.6")  # 4 s at the fast model's $0.15
    assert pipeline.veo.stats(prompt)["operations_started"] == 1
    with av.open(io.BytesIO(await fetch(pipeline.api, body["video_url"]))) as container:
        assert container.streams.video[0].codec_context.name == "h264"


async def test_veo_429_is_retried_with_backoff_then_succeeds(pipeline: Pipeline) -> None:
    generation, prompt = await pipeline.generate(
        "busy afternoon market", reject_first=1, reject_status=429
    )
    seen = await generation.events()
    assert statuses(seen)[0] == "QUEUED"
    assert statuses(seen)[-1] == "SUCCEEDED"
    retry = next(e for e in seen if e.data["reason"] == "RateLimited")
    assert retry.data["status"] == "RUNNING"
    assert (await generation.get())["attempts"] == 2
    assert pipeline.veo.stats(prompt)["operations_started"] == 1


async def test_safety_filtered_prompt_fails_at_once_with_its_reason(pipeline: Pipeline) -> None:
    generation, _ = await pipeline.generate(
        "something the filter blocks", outcome="safety_filtered"
    )
    assert statuses(await generation.events()) == ["QUEUED", "RUNNING", "FAILED"]
    final = await generation.get()
    assert final["reason"] == "SafetyFiltered"
    assert "usage guidelines" in final["message"]
    assert final["attempts"] == 1
    assert Decimal(final["cost_usd"]) == 0
    assert final["video_url"] is None


async def test_generation_that_never_finishes_fails_at_the_deadline(pipeline: Pipeline) -> None:
    generation, _ = await pipeline.generate("an endless staircase", outcome="never")
    final = await generation.wait_final(seconds=POLL_DEADLINE_SECONDS + 90)
    assert (final["status"], final["reason"]) == ("FAILED", "ProviderTimeout")
    assert final["attempts"] == 1


async def test_cancel_while_running_kills_the_worker(pipeline: Pipeline) -> None:
    generation, _ = await pipeline.generate("a slow sunrise", outcome="never")
    async with generation.stream() as stream:
        assert statuses(await until_final(stream, limit=2)) == ["QUEUED", "RUNNING"]
        pid = await running_worker_pid(pipeline, generation.id)

        assert await generation.cancel() == 202
        assert statuses(await until_final(stream, limit=1)) == ["CANCELED"]
    await eventually(
        lambda: not pid_alive(pid), what="the worker process to end", seconds=60, interval=0.25
    )
    assert (await generation.get())["status"] == "CANCELED"
    assert await generation.cancel() == 409


async def test_operator_killed_mid_flight_loses_and_repeats_nothing(pipeline: Pipeline) -> None:
    # The worker finishes while no operator is watching.
    generation = await pipeline.finished_unwatched("a paper boat on a river")
    pipeline.restart_operator()

    seen = await generation.events()
    assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [e.data["seq"] for e in seen] == [1, 2, 3]
    jobs = pipeline.kubectl(
        "get", "jobs", "-l", f"genvid.io/generation={generation.id}", "-o", "name"
    )
    assert len(jobs.split()) == 1
    assert len(pipeline.pods(generation.id)) == 1
    row = await job_row(pipeline.env["DATABASE_URL"], generation.id)
    assert (row["status"], row["event_seq"]) == ("SUCCEEDED", 3)


async def test_operator_restarted_between_two_transitions_syncs_the_first_again_once(
    pipeline: Pipeline,
) -> None:
    """A running generation's syncedSeq waits for its next status patch: an operator killed
    before that leaves the transition unsynced on the resource, and the next one syncs it
    again without the client hearing of it twice."""
    generation, _ = await pipeline.generate("a heron in the reeds", polls_until_done=40)
    assert statuses(await generation.events(limit=2)) == ["QUEUED", "RUNNING"]
    running = pipeline.get("vg", generation.id)["status"]
    assert (running["phase"], running["eventSeq"], running["syncedSeq"]) == ("RUNNING", 2, 1)
    pipeline.kill_operator()
    pipeline.restart_operator()

    seen = await generation.events()
    assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [e.data["seq"] for e in seen] == [1, 2, 3]
    final = pipeline.get("vg", generation.id)["status"]
    assert (final["eventSeq"], final["syncedSeq"]) == (3, 3)
    row = await job_row(pipeline.env["DATABASE_URL"], generation.id)
    assert (row["status"], row["event_seq"]) == ("SUCCEEDED", 3)


async def test_sse_resumes_after_last_event_id_without_gaps_or_repeats(
    pipeline: Pipeline,
) -> None:
    generation, _ = await pipeline.generate("a hummingbird", polls_until_done=5)
    first = await generation.events(limit=1)
    assert statuses(first) == ["QUEUED"]
    rest = await generation.events(last_event_id=first[0].id)
    assert statuses(rest) == ["RUNNING", "SUCCEEDED"]
    assert all(int(event.id or "") > int(first[0].id or "") for event in rest)


async def test_job_inserted_by_an_api_that_crashed_before_creating_it_still_runs(
    pipeline: Pipeline,
) -> None:
    """As if the api died between its INSERT and creating the VideoGeneration."""
    user = await pipeline.api.register("u")
    generation = Generation(pipeline.api, user, str(uuid.uuid4()))
    connection = await asyncpg.connect(pipeline.env["DATABASE_URL"])
    try:
        a_minute_ago = datetime.now(UTC) - timedelta(minutes=1)
        await insert_job(
            connection, user.user_id, id=uuid.UUID(generation.id), prompt="an orphaned request",
            created_at=a_minute_ago, updated_at=a_minute_ago,
        )  # fmt: skip
    finally:
        await connection.close()
    final = await generation.wait_final()
    assert final["status"] == "SUCCEEDED"
    assert pipeline.kubectl("get", "vg", generation.id, "-o", "name").strip()


async def test_operator_exports_transition_metrics(pipeline: Pipeline) -> None:
    generation, _ = await pipeline.generate("a metered kite")
    assert (await generation.wait_final())["status"] == "SUCCEEDED"
    port = pipeline.state.port("operator-metrics")
    text = (await fetch(pipeline.api, f"http://127.0.0.1:{port}/metrics")).decode()
    assert 'genvid_generation_transitions_total{phase="SUCCEEDED",reason="Generated"}' in text
    assert (
        'genvid_generations_finished_total{model="veo-3.0-fast-generate-001",phase="SUCCEEDED"}'
        in text
    )
    assert "genvid_generation_queue_wait_seconds_count" in text
    assert "genvid_worker_jobs_created_total" in text
