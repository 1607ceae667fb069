"""A worker that crashes before writing its result: its log's tail (what the kubelet keeps as
the termination message) reaches the operators on the pod, never the user, whether through
the api, the events or the database row."""

from __future__ import annotations

import json

import pytest

from support.pipeline import Pipeline, PipelineSettings, job_row

pytestmark = pytest.mark.stack

TAIL = "Traceback: KeyError at /app/genvid_worker/secret_path.py token=sk-live-0123"


@pytest.fixture(scope="module")
def pipeline_settings() -> PipelineSettings:
    crash = ["python", "-c", f"import sys; print({TAIL!r}); sys.exit(1)"]
    return PipelineSettings(
        env={"GENVID_WORKER_COMMAND": json.dumps(crash), "GENVID_MAX_RETRIES": "0"}
    )


async def test_a_crashed_worker_tells_users_a_reason_and_operators_the_log(
    pipeline: Pipeline,
) -> None:
    generation, _ = await pipeline.generate("a worker that crashes")
    events = await generation.events()
    final = await generation.wait_final()
    assert (final["status"], final["reason"]) == ("FAILED", "WorkerCrashed")
    assert final["message"].startswith("The generation stopped unexpectedly.")
    row = await job_row(pipeline.env["DATABASE_URL"], generation.id)
    seen_by_users = json.dumps([final, [event.data for event in events], dict(row)], default=str)
    assert "sk-live" not in seen_by_users and "secret_path" not in seen_by_users
    # The operators' view: the pod's termination message, in `kubectl describe`.
    (pod,) = pipeline.pods(generation.id)
    assert TAIL in pipeline.kubectl("describe", "pod", pod["metadata"]["name"])
