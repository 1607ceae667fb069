"""Outages on the real stack: a component stopped or gone while generations are in flight.

Each generation must still reach the right terminal state with its event sequence 1..n, no
transition lost or repeated, and after every test the budget ledger balances.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from genvid_contracts.events import STREAM_NAME
from genvid_devstack import apps
from genvid_devstack.nats import start_nats
from genvid_devstack.state import State
from support.api import ApiClient, api_http_client
from support.database import ledger_discrepancies
from support.pipeline import Generation, Pipeline, PipelineSettings, job_row, statuses, submit
from support.polling import eventually
from support.processes import apiserver_pid, frozen, postmaster_pid

pytestmark = pytest.mark.stack

KEPT_SECONDS = 2  # how long a finished, synced Job stays in this module
SAFETY_NET_SECONDS = 3600
DATABASE_TIMEOUT_SECONDS = 2
KUBE_TIMEOUT_SECONDS = 2
# Longer than every apiserver timeout involved: the api's and the operator's requests (30 s).
APISERVER_FROZEN_SECONDS = 35


@pytest.fixture(scope="module")
def pipeline_settings() -> PipelineSettings:
    return PipelineSettings(
        env={
            "GENVID_TTL_SECONDS_AFTER_FINISHED": str(KEPT_SECONDS),
            "GENVID_UNSYNCED_JOB_TTL_SECONDS": str(SAFETY_NET_SECONDS),
            "GENVID_RESYNC_SECONDS": "5",
            "GENVID_DATABASE_TIMEOUT_SECONDS": str(DATABASE_TIMEOUT_SECONDS),
            "GENVID_DATABASE_POOL_TIMEOUT_SECONDS": str(DATABASE_TIMEOUT_SECONDS),
            "GENVID_KUBE_REQUEST_TIMEOUT_SECONDS": str(KUBE_TIMEOUT_SECONDS),
        }
    )


@pytest.fixture(autouse=True)
async def balanced_ledger(pipeline: Pipeline) -> AsyncIterator[None]:
    """After every fault: each finished generation settled once, and each budget counter
    holding exactly its unsettled reservations and its settled charges."""
    yield
    database = pipeline.env["DATABASE_URL"]

    async def balanced() -> bool:
        return not await ledger_discrepancies(database)

    try:
        await eventually(balanced, what="the ledger to balance", seconds=60, interval=0.5)
    except AssertionError:
        raise AssertionError(f"unbalanced ledger: {await ledger_discrepancies(database)}") from None


async def succeeded_once(pipeline: Pipeline, generation: Generation, seconds: float = 120) -> None:
    """SUCCEEDED, every transition published once (1..3) and mirrored, and settled."""
    assert (await generation.wait_final(seconds))["status"] == "SUCCEEDED"
    seen = await generation.events()
    assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"], [e.data for e in seen]
    assert [e.data["seq"] for e in seen] == [1, 2, 3]
    row = await job_row(pipeline.env["DATABASE_URL"], generation.id)
    assert (row["status"], row["event_seq"]) == ("SUCCEEDED", 3)
    assert row["settled_at"] is not None


def job(pipeline: Pipeline, generation_id: str) -> dict[str, object] | None:
    items = pipeline.get("jobs", "-l", f"genvid.io/generation={generation_id}")["items"]
    return items[0] if items else None


async def test_a_result_outlives_its_job(pipeline: Pipeline) -> None:
    generation = await pipeline.finished_unwatched("a lighthouse in fog")
    generation_id = generation.id
    # Gone before the operator read it (a TTL, a hand, an eviction): its pod goes with it.
    pipeline.kubectl("delete", "job", f"genvid-{generation_id}", "--cascade=foreground")
    await eventually(
        lambda: not pipeline.pods(generation_id), what="the pods to go", seconds=60, interval=0.25
    )
    pipeline.restart_operator()

    seen = await generation.events()
    assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [e.data["seq"] for e in seen] == [1, 2, 3]
    final = await generation.get()
    assert final["video_url"] is not None
    row = await job_row(pipeline.env["DATABASE_URL"], generation_id)
    assert (row["status"], row["event_seq"]) == ("SUCCEEDED", 3)


async def test_an_attempt_lost_with_its_job_is_retried(pipeline: Pipeline) -> None:
    """The worker SIGKILLed (nothing stored) and its Job deleted while no operator watched:
    a lost attempt, retried after the back-off with a new Job."""
    generation, _ = await pipeline.generate("a worker lost with its job", polls_until_done=40)
    assert statuses(await generation.events(limit=2)) == ["QUEUED", "RUNNING"]
    pipeline.kill_operator()
    (pod,) = pipeline.pods(generation.id)
    (container,) = pod["status"]["containerStatuses"]
    os.killpg(int(container["containerID"].removeprefix("process://")), signal.SIGKILL)
    pipeline.kubectl("delete", "job", f"genvid-{generation.id}", "--cascade=foreground")
    await eventually(
        lambda: not pipeline.pods(generation.id), what="the pods to go", seconds=60, interval=0.25
    )
    pipeline.restart_operator()

    final = await generation.wait_final(seconds=180)
    assert (final["status"], final["attempts"]) == ("SUCCEEDED", 2)
    seen = await generation.events()
    assert [(e.data["status"], e.data["reason"]) for e in seen] == [
        ("QUEUED", "Accepted"),
        ("RUNNING", "Generating"),
        ("RUNNING", "WorkerLost"),
        ("RUNNING", "Generating"),
        ("SUCCEEDED", "Generated"),
    ]
    assert [e.data["seq"] for e in seen] == [1, 2, 3, 4, 5]


async def test_a_finished_job_is_deleted_only_after_its_status_is_synced(
    pipeline: Pipeline,
) -> None:
    generation = await pipeline.finished_unwatched("a kite over dunes")
    generation_id = generation.id
    await asyncio.sleep(KEPT_SECONDS * 3)  # longer than it is kept once synced
    unsynced = job(pipeline, generation_id)
    assert unsynced is not None, "a finished Job went before its status was recorded"
    assert unsynced["spec"]["ttlSecondsAfterFinished"] == SAFETY_NET_SECONDS  # type: ignore[index]
    pipeline.restart_operator()

    assert (await generation.wait_final())["status"] == "SUCCEEDED"
    await eventually(
        lambda: job(pipeline, generation_id) is None,
        what="the synced Job to be deleted",
        seconds=60,
        interval=0.5,
    )
    row = await job_row(pipeline.env["DATABASE_URL"], generation_id)
    assert (row["status"], row["event_seq"]) == ("SUCCEEDED", 3)


async def transitions(pipeline: Pipeline, state: State | None = None) -> float:
    family = (await pipeline.operator_metrics(state))["genvid_generation_transitions"]
    return sum(s.value for s in family.samples if s.name == "genvid_generation_transitions_total")


async def test_two_operators_never_give_one_event_seq_two_transitions(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """A partition or a stuck old pod: two operators on one namespace. Each status patch
    carries the resourceVersion it was decided from, so the slower one re-reads instead of
    writing the same eventSeq a second time."""
    state = State(tmp_path)
    state.prepare()
    second = apps.start_operator(state, pipeline.env, pipeline.namespace)
    try:
        before = await transitions(pipeline)
        generations = [
            (await pipeline.generate(f"twin {i}", polls_until_done=2))[0] for i in range(6)
        ]
        for generation in generations:
            assert (await generation.wait_final())["status"] == "SUCCEEDED"
            seen = await generation.events()
            assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"], [e.data for e in seen]
            assert [e.data["seq"] for e in seen] == [1, 2, 3]
            row = await job_row(pipeline.env["DATABASE_URL"], generation.id)
            assert (row["status"], row["event_seq"]) == ("SUCCEEDED", 3)
        made = await transitions(pipeline) - before + await transitions(pipeline, state)
        assert made == 3 * len(generations), "a transition was written by both operators"
    finally:
        second.stop()


async def test_postgres_frozen_writes_answer_503_fast_and_nothing_is_lost(
    pipeline: Pipeline, stack_state: Path
) -> None:
    """Postgres hangs (SIGSTOP: connections open, no answer) with generations in flight."""
    in_flight = [(await pipeline.generate(f"frozen {i}", polls_until_done=8))[0] for i in range(3)]
    user = await pipeline.api.register("u")
    with frozen(postmaster_pid(stack_state)):
        started = time.monotonic()
        response = await pipeline.api.generate(user, prompt="while the database sleeps")
        took = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"]
        # Pre-ping, reconnect: at most a few database timeouts, never a hung request.
        assert took < 4 * DATABASE_TIMEOUT_SECONDS, took
        ready = await pipeline.api.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "database": "unavailable",
            "nats": "ok",
            "kubernetes": "ok",
        }
        alive = await pipeline.api.http.get("/healthz")
        assert alive.status_code == 200
        await asyncio.sleep(3 * DATABASE_TIMEOUT_SECONDS)  # longer than every timeout involved

    ready = await pipeline.api.http.get("/readyz")
    assert ready.json()["status"] == "ready"
    for generation in in_flight:
        await succeeded_once(pipeline, generation)
    after = await pipeline.api.generate(user, prompt="once it is back")
    assert after.status_code == 202, after.text


async def test_apiserver_frozen_generations_finish_and_nothing_is_lost(
    pipeline: Pipeline, stack_state: Path
) -> None:
    """The apiserver hangs (SIGSTOP) longer than every timeout, with generations in flight.
    POST /generate still answers within the api's apiserver timeout: the row is committed and
    the outbox creates its resource once the apiserver answers again (202, never a hung
    request); /readyz says `degraded` and the replica keeps its traffic."""
    in_flight = [
        (await pipeline.generate(f"apiserver {i}", polls_until_done=8))[0] for i in range(3)
    ]
    user = await pipeline.api.register("k")
    with frozen(apiserver_pid(stack_state)):
        started = time.monotonic()
        accepted = await submit(pipeline.api, user, "while the apiserver sleeps")
        took = time.monotonic() - started
        assert took < 3 * KUBE_TIMEOUT_SECONDS, took
        ready = await pipeline.api.http.get("/readyz")
        assert (ready.status_code, ready.json()["kubernetes"]) == (200, "unavailable")
        assert ready.json()["status"] == "degraded"
        await asyncio.sleep(APISERVER_FROZEN_SECONDS - (time.monotonic() - started))

    for generation in [*in_flight, accepted]:
        await succeeded_once(pipeline, generation, seconds=180)
    assert (await pipeline.api.http.get("/readyz")).json()["status"] == "ready"


async def test_nats_down_at_start_up_then_back(pipeline: Pipeline, tmp_path: Path) -> None:
    """An api and an operator started while NATS is down: the api serves all but the event
    streams (503), the operator creates Jobs; once NATS is up every transition is published."""
    state = State(tmp_path)
    state.prepare()
    env = {**pipeline.env, "NATS_URL": f"nats://127.0.0.1:{state.port('nats')}"}
    pipeline.operator.stop()  # this one, with NATS, stands aside meanwhile
    operator = apps.start_operator(state, env, pipeline.namespace)  # started: it did not wait
    api_port = state.port("api")
    api = apps.start_api(state, env, pipeline.namespace, api_port)
    server = None
    try:
        async with api_http_client(f"http://127.0.0.1:{api_port}") as http:
            prompt = f"a quiet harbour {uuid.uuid4().hex[:6]}"
            pipeline.veo.add_scenario(prompt, polls_until_done=2)
            client = ApiClient(http=http)
            generation = await submit(client, await client.register("u"), prompt)
            streamed = await http.get(
                f"/generations/{generation.id}/events", headers=generation.user.auth
            )
            assert streamed.status_code == 503, streamed.text
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()["nats"]) == (200, "unavailable")
            await eventually(
                lambda: any(
                    p["status"].get("phase") == "Succeeded" for p in pipeline.pods(generation.id)
                ),
                what="the worker of a Job created without NATS to finish",
                seconds=90,
                interval=0.25,
            )
            server = start_nats(state.root, state.logs)

            assert (await generation.wait_final())["status"] == "SUCCEEDED"

            # The api reconnects on its own schedule: its streams answer 503 until it has.
            async def api_ready() -> bool:
                return (await http.get("/readyz")).json()["status"] == "ready"

            await eventually(api_ready, what="the api to reconnect to NATS", seconds=30)
            seen = await generation.events()
            assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"]
            assert [e.data["seq"] for e in seen] == [1, 2, 3]
    finally:
        api.stop()
        operator.stop()
        if server is not None:
            server.process.stop()
        pipeline.restart_operator()


async def test_a_deleted_stream_is_created_again(pipeline: Pipeline) -> None:
    client = await nats.connect(pipeline.env["NATS_URL"])
    try:
        await client.jetstream().delete_stream(STREAM_NAME)
    finally:
        await client.close()
    generation, _ = await pipeline.generate("a red balloon", polls_until_done=2)
    assert (await generation.wait_final())["status"] == "SUCCEEDED"
    seen = await generation.events()
    assert statuses(seen) == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [e.data["seq"] for e in seen] == [1, 2, 3]
