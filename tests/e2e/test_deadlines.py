"""Deadlines end to end on the real stack: a generation not finished `deadline_seconds` after
its acceptance ends CANCELED with reason DeadlineExceeded, whether it still waited for capacity
(ended by a pass of the operator) or ran (its worker stopped by the Job's activeDeadlineSeconds,
or by the pass that deletes the Job), and is settled as a cancel at that moment would be.

Short deadlines (the api's lower bound is lowered for this module) and a resync every second;
every worker here would run for minutes (the fake Veo never finishes), so nothing but the
deadline (or the test's own cancel) ends it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from support.pipeline import (
    Pipeline,
    PipelineSettings,
    job_row,
    running_worker_pid,
    statuses,
    submit,
    until_final,
    until_status,
    usage,
)
from support.polling import eventually
from support.processes import pid_alive

pytestmark = pytest.mark.stack

USER_CAP = 2
FAST_MICROS = 600_000  # what 4 s of veo-3.0-fast-generate-001 cost, at $0.15 a second
# Long enough for a worker to start before it (a pod of the process kubelet starts in seconds).
RUNNING_DEADLINE_SECONDS = 30
WAITING_DEADLINE_SECONDS = 8


@pytest.fixture(scope="module")
def pipeline_settings() -> PipelineSettings:
    return PipelineSettings(
        env={
            "GENVID_USER_MAX_ACTIVE": str(USER_CAP),
            "GENVID_ADMISSION_INTERVAL_SECONDS": "0.5",
            "GENVID_RESYNC_SECONDS": "1",
            "GENVID_MIN_DEADLINE_SECONDS": "1",
        }
    )


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_generation_waiting_past_its_deadline_is_canceled_uncharged_holding_nothing(
    pipeline: Pipeline,
) -> None:
    user = await pipeline.api.register("u")
    tag = f"holds-{uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(tag, outcome="never")
    holders = [await submit(pipeline.api, user, f"{tag} {n}") for n in range(USER_CAP)]
    for holder in holders:
        await until_status(holder, "RUNNING")

    late = await submit(
        pipeline.api, user, f"{tag} late", deadline_seconds=WAITING_DEADLINE_SECONDS
    )
    events = await late.events()
    assert statuses(events) == ["QUEUED", "CANCELED"]
    assert events[0].data["reason"] == "WaitingForCapacity"
    assert events[-1].data["reason"] == "DeadlineExceeded"
    body = await late.get()
    assert (body["status"], body["reason"], body["cost_usd"]) == (
        "CANCELED", "DeadlineExceeded", "0.00",
    )  # fmt: skip
    assert body["deadline_at"] is not None and body["deadline_at"][:19] in body["message"]
    assert all(parse(event.data["deadline_at"]) == parse(body["deadline_at"]) for event in events)

    row = await job_row(pipeline.env["DATABASE_URL"], late.id)
    assert (row["status"], row["reason"]) == ("CANCELED", "DeadlineExceeded")
    assert (row["charged_micros"], row["admitted_at"]) == (0, None)
    assert row["settled_at"] is not None
    assert not pipeline.kubectl(
        "get", "job", f"genvid-{late.id}", "--ignore-not-found", "-o", "name"
    )
    # The places and the money the two running ones hold are untouched.
    spend = await usage(pipeline, user)
    assert (spend["active"], spend["waiting"]) == (USER_CAP, 0)
    assert (spend["spent_usd"], spend["reserved_usd"]) == ("0.00", "1.20")
    for holder in holders:
        assert (await holder.get())["status"] == "RUNNING"
        assert await holder.cancel() == 202
    for holder in holders:
        assert (await holder.wait_final())["status"] == "CANCELED"


async def test_a_running_generation_past_its_deadline_is_stopped_and_canceled(
    pipeline: Pipeline,
) -> None:
    user = await pipeline.api.register("u")
    prompt = f"an hourglass {uuid.uuid4().hex[:6]}"
    pipeline.veo.add_scenario(prompt, outcome="never")
    generation = await submit(pipeline.api, user, prompt, deadline_seconds=RUNNING_DEADLINE_SECONDS)
    deadline_at = (await generation.get())["deadline_at"]
    async with generation.stream() as stream:
        assert statuses(await until_final(stream, limit=2)) == ["QUEUED", "RUNNING"]
        pid = await running_worker_pid(pipeline, generation.id)
        [ended] = await until_final(stream, limit=1)
    await eventually(
        lambda: not pid_alive(pid), what="the worker process to end", seconds=60, interval=0.25
    )

    # On the event stream ...
    assert (ended.data["status"], ended.data["reason"]) == ("CANCELED", "DeadlineExceeded")
    assert parse(ended.data["deadline_at"]) == parse(deadline_at)
    # ... in Postgres, settled as a cancel of a started generation is (the estimate) ...
    row = await job_row(pipeline.env["DATABASE_URL"], generation.id)
    assert (row["status"], row["reason"], row["message"]) == (
        "CANCELED", "DeadlineExceeded", ended.data["message"],
    )  # fmt: skip
    assert row["started_at"] is not None and row["finished_at"] is not None
    assert row["deadline_at"] == parse(deadline_at)
    assert row["charged_micros"] == FAST_MICROS and row["settled_at"] is not None
    # ... and on the resource, which says its deadline to kubectl.
    resource = pipeline.get("vg", generation.id)
    deadline_text = resource["spec"]["deadline"]
    assert parse(deadline_text) == parse(deadline_at)
    assert (resource["status"]["phase"], resource["status"]["reason"]) == (
        "CANCELED", "DeadlineExceeded",
    )  # fmt: skip
    assert deadline_text in resource["status"]["message"]
    table = pipeline.kubectl("get", "vg", generation.id).splitlines()
    assert table[0].split()[7] == "DEADLINE" and table[1].split()[7] == deadline_text
    # Like a user's cancel, one-way.
    assert await generation.cancel() == 409
    assert (await usage(pipeline, user))["reserved_usd"] == "0.00"
