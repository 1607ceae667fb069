"""The worker as the Job runs it: `python -m genvid_worker` in its own process, against the real
Cloud Storage emulator and, for Veo, the real google-genai SDK talking to the fake Veo server.

The fake speaks the Vertex AI protocol of google-genai 3.4.0 (genvid_devstack.veo). Each test
uses its own job id and prompt, so scenarios and counts never mix between tests.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from genvid_contracts.worker import result_object
from genvid_devstack.veo import FakeVeo

pytestmark = pytest.mark.stack

FPS = 24
PRICE = "0.15"
SUCCESS_KEYS = {
    "status", "provider", "model", "bucket", "object", "poster_object", "size_bytes",
    "duration_seconds", "content_type", "cost_usd", "operation",
}  # fmt: skip
# Environment that must not leak from the developer's shell into the worker under test.
_FOREIGN = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION")


@dataclass
class Run:
    code: int
    result: dict[str, Any]
    stdout: str


def worker_env(stack_env: dict[str, str], **extra: str) -> dict[str, str]:
    """Only what a worker pod gets: the bucket, the emulator, and what the test adds."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN and not k.startswith("GENVID_")}
    env["GENVID_BUCKET"] = stack_env["GENVID_BUCKET"]
    env["STORAGE_EMULATOR_HOST"] = stack_env["STORAGE_EMULATOR_HOST"]
    env.update(extra)
    return env


def veo_env(stack_env: dict[str, str], fake: FakeVeo, **extra: str) -> dict[str, str]:
    settings = {
        "GOOGLE_API_KEY": "fake-vertex-key",
        "GENVID_VEO_BASE_URL": fake.base_url,
        "GENVID_POLL_INTERVAL_SECONDS": "0.05",
        "GENVID_POLL_DEADLINE_SECONDS": "20",
        "GENVID_POLL_MAX_CONSECUTIVE_ERRORS": "1",
        "GENVID_VEO_REQUEST_TIMEOUT_SECONDS": "10",
    }
    return worker_env(stack_env, **{**settings, **extra})


def run_worker(env: dict[str, str], tmp_path: Path, *args: str) -> Run:
    log = tmp_path / f"termination-log-{uuid.uuid4().hex[:6]}"
    completed = subprocess.run(
        [sys.executable, "-m", "genvid_worker", *args, "--termination_log", str(log)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert log.exists(), completed.stdout + completed.stderr
    result = json.loads(log.read_bytes())
    for line in completed.stdout.splitlines():  # progress is one JSON object per line
        json.loads(line)
    return Run(completed.returncode, result, completed.stdout)


def unique(label: str) -> tuple[str, str]:
    """A job id and a prompt token no other test uses."""
    token = uuid.uuid4().hex[:10]
    return f"{label}-{token}", f"tok{token}"


def download(bucket: Any, name: str) -> tuple[bytes, str]:
    blob = bucket.get_blob(name)
    assert blob is not None, f"{name} does not exist"
    return blob.download_as_bytes(), blob.content_type


def video_facts(data: bytes) -> tuple[str, int, int, int, float]:
    """Codec, width, height, decoded frame count and container duration of an MP4."""
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        duration = float(container.duration or 0) / av.time_base
        codec = stream.codec_context
        return codec.name, codec.width, codec.height, frames, duration


def assert_jpeg(data: bytes, size: tuple[int, int]) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert (image.format, image.size) == ("JPEG", size)


# --- synthetic ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect", "seconds", "size"), [("16:9", 4, (640, 360)), ("9:16", 2, (360, 640))]
)
def test_synthetic_preview_is_a_real_h264_video_streamed_to_its_canonical_name(
    stack_env: dict[str, str],
    bucket: Any,
    tmp_path: Path,
    aspect: str,
    seconds: int,
    size: tuple[int, int],
) -> None:
    job_id, token = unique("syn")
    run = run_worker(
        worker_env(stack_env),
        tmp_path,
        "--job_id", job_id, "--prompt", f"A paper boat on a rainy street {token}",
        "--duration_seconds", str(seconds), "--aspect_ratio", aspect,
    )  # fmt: skip
    assert run.code == 0, run.stdout
    result = run.result
    assert set(result) == SUCCESS_KEYS
    assert result["status"] == "succeeded"
    assert result["provider"] == "synthetic"
    assert result["bucket"] == stack_env["GENVID_BUCKET"]
    assert result["object"].startswith(f"previews/{job_id}/preview_")
    assert result["object"].endswith("Z.mp4")
    assert result["poster_object"].startswith(f"previews/{job_id}/poster_")
    assert result["content_type"] == "video/mp4"
    assert result["cost_usd"] == "0"
    assert result["operation"] is None

    video, content_type = download(bucket, result["object"])
    assert content_type == "video/mp4"
    assert result["size_bytes"] == len(video)
    codec, width, height, frames, duration = video_facts(video)
    assert (codec, (width, height)) == ("h264", size)
    assert frames == seconds * FPS
    assert abs(duration - seconds) <= 1 / FPS
    assert abs(result["duration_seconds"] - seconds) <= 1 / FPS

    poster, poster_type = download(bucket, result["poster_object"])
    assert poster_type == "image/jpeg"
    assert_jpeg(poster, size)


@pytest.mark.parametrize(("billing", "cost"), [("false", "0"), ("true", "0.25")])
def test_synthetic_previews_cost_the_list_price_unless_billing_is_off(
    stack_env: dict[str, str], tmp_path: Path, billing: str, cost: str
) -> None:
    job_id, token = unique("price")
    run = run_worker(
        worker_env(stack_env, GENVID_SYNTHETIC_BILLING=billing),
        tmp_path,
        "--job_id", job_id, "--prompt", token, "--duration_seconds", "1",
        "--price_usd_per_second", "0.25", "--provider", "synthetic",
    )  # fmt: skip
    assert run.code == 0, run.stdout
    assert run.result["cost_usd"] == cost


def stored_result(bucket: Any, job_id: str) -> dict[str, Any]:
    data, content_type = download(bucket, result_object(job_id))
    assert content_type == "application/json"
    document: dict[str, Any] = json.loads(data)
    return document


def test_the_result_is_stored_beside_the_preview_as_in_the_termination_log(
    stack_env: dict[str, str], fake_veo: FakeVeo, bucket: Any, tmp_path: Path
) -> None:
    job_id, token = unique("kept")
    run = run_worker(
        worker_env(stack_env), tmp_path, "--job_id", job_id, "--prompt", token,
        "--duration_seconds", "1", "--provider", "synthetic",
    )  # fmt: skip
    assert run.code == 0, run.stdout
    assert stored_result(bucket, job_id) == run.result

    failed_id, unsafe = unique("kept-unsafe")
    fake_veo.add_scenario(unsafe, outcome="safety_filtered")
    run = run_worker(veo_env(stack_env, fake_veo), tmp_path, *veo_args(failed_id, unsafe))
    assert run.code == 3, run.stdout
    assert stored_result(bucket, failed_id) == run.result
    assert run.result["reason"] == "SafetyFiltered"


def test_an_unreachable_bucket_is_a_retryable_failure(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    env = worker_env(
        stack_env,
        STORAGE_EMULATOR_HOST="http://127.0.0.1:1",  # nothing listens on port 1
        GENVID_STORAGE_RETRY_SECONDS="1",
    )
    job_id, token = unique("nostore")
    run = run_worker(
        env, tmp_path, "--job_id", job_id, "--prompt", token, "--duration_seconds", "1"
    )
    assert run.code == 75, run.stdout
    assert run.result["reason"] == "StorageUnavailable"
    assert run.result["retryable"] is True


# --- Veo ---------------------------------------------------------------------------------------


def veo_args(job_id: str, prompt: str, *extra: str) -> list[str]:
    return [
        "--job_id", job_id, "--prompt", prompt, "--model", "veo-3.0-fast-generate-001",
        "--duration_seconds", "4", "--aspect_ratio", "16:9", "--price_usd_per_second", PRICE,
        *extra,
    ]  # fmt: skip


def test_veo_writes_into_the_bucket_and_the_worker_copies_it_to_the_canonical_name(
    stack_env: dict[str, str], fake_veo: FakeVeo, bucket: Any, tmp_path: Path
) -> None:
    job_id, token = unique("veo")
    fake_veo.add_scenario(token, polls_until_done=2)
    args = veo_args(
        job_id, f"A fox in the snow {token}", "--seed", "7", "--negative_prompt", "dogs"
    )
    run = run_worker(veo_env(stack_env, fake_veo), tmp_path, *args)

    assert run.code == 0, run.stdout
    result = run.result
    assert set(result) == SUCCESS_KEYS
    assert (result["provider"], result["model"]) == ("veo", "veo-3.0-fast-generate-001")
    assert result["cost_usd"] == "0.60"  # 0.15 x 4 s
    assert result["object"].startswith(f"previews/{job_id}/preview_")
    assert abs(result["duration_seconds"] - 4) <= 1 / FPS

    # What Veo was asked: one video, written straight into the job's prefix.
    [operation] = fake_veo.operations(token)
    assert result["operation"] == operation["name"]
    parameters = operation["parameters"]
    assert parameters["storageUri"] == f"gs://{stack_env['GENVID_BUCKET']}/previews/{job_id}/veo/"
    assert parameters["sampleCount"] == 1
    assert (parameters["durationSeconds"], parameters["aspectRatio"]) == (4, "16:9")
    assert (parameters["seed"], parameters["negativePrompt"]) == (7, "dogs")

    video, content_type = download(bucket, result["object"])
    assert content_type == "video/mp4"
    assert result["size_bytes"] == len(video)
    veo_objects = [b.name for b in bucket.list_blobs(prefix=f"previews/{job_id}/veo/")]
    assert len(veo_objects) == 1
    assert download(bucket, veo_objects[0])[0] == video  # a copy, byte for byte
    codec, width, height, frames, _ = video_facts(video)
    assert (codec, frames) == ("h264", 4 * FPS)
    poster, poster_type = download(bucket, result["poster_object"])
    assert poster_type == "image/jpeg"
    assert_jpeg(poster, (width, height))

    record = json.loads(download(bucket, f"previews/{job_id}/operation.json")[0])
    assert record["operation"] == operation["name"]


def test_veo_throttling_at_start_is_retryable_and_the_retry_succeeds(
    stack_env: dict[str, str], fake_veo: FakeVeo, bucket: Any, tmp_path: Path
) -> None:
    job_id, token = unique("throttle")
    fake_veo.add_scenario(token, reject_first=1, reject_status=429)
    env = veo_env(stack_env, fake_veo)

    first = run_worker(env, tmp_path, *veo_args(job_id, token))
    assert first.code == 75, first.stdout
    assert (first.result["reason"], first.result["retryable"]) == ("RateLimited", True)
    assert bucket.get_blob(f"previews/{job_id}/operation.json") is None

    second = run_worker(env, tmp_path, *veo_args(job_id, token))
    assert second.code == 0, second.stdout
    stats = fake_veo.stats(token)
    assert (stats["predict_calls"], stats["operations_started"]) == (2, 1)


def test_a_retried_worker_resumes_the_recorded_operation_instead_of_paying_twice(
    stack_env: dict[str, str], fake_veo: FakeVeo, tmp_path: Path
) -> None:
    job_id, token = unique("resume")
    # The operation starts, then its first polls fail more often than one pod tolerates.
    fake_veo.add_scenario(token, fail_polls=2, fail_poll_status=503, polls_until_done=1)
    env = veo_env(stack_env, fake_veo)

    first = run_worker(env, tmp_path, *veo_args(job_id, token))
    assert first.code == 75, first.stdout
    assert (first.result["reason"], first.result["retryable"]) == ("ProviderUnavailable", True)

    second = run_worker(env, tmp_path, *veo_args(job_id, token))
    assert second.code == 0, second.stdout
    assert '"veo.resumed"' in second.stdout
    stats = fake_veo.stats(token)
    assert (stats["predict_calls"], stats["operations_started"]) == (1, 1)
    [operation] = fake_veo.operations(token)
    assert second.result["operation"] == operation["name"]
    assert second.result["cost_usd"] == "0.60"


def test_a_pod_stopped_mid_generation_is_retryable_and_its_successor_resumes(
    stack_env: dict[str, str], fake_veo: FakeVeo, tmp_path: Path
) -> None:
    job_id, token = unique("sigterm")
    fake_veo.add_scenario(token, polls_until_done=40)  # about two seconds at 0.05 s per poll
    env = veo_env(stack_env, fake_veo)
    log = tmp_path / "termination-log"
    args = [*veo_args(job_id, token), "--termination_log", str(log)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "genvid_worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    seen = []
    for line in worker.stdout:  # wait until the paid operation is recorded and polled
        seen.append(line)
        if '"veo.started"' in line:
            break
    worker.send_signal(signal.SIGTERM)  # as the kubelet does when the pod is evicted
    worker.communicate(timeout=60)
    assert worker.returncode == 75, "".join(seen)
    first = json.loads(log.read_bytes())
    assert (first["reason"], first["retryable"]) == ("Interrupted", True)

    second = run_worker(env, tmp_path, *veo_args(job_id, token))
    assert second.code == 0, second.stdout
    assert '"veo.resumed"' in second.stdout
    assert fake_veo.stats(token)["operations_started"] == 1


def test_a_transient_poll_error_is_absorbed_within_one_run(
    stack_env: dict[str, str], fake_veo: FakeVeo, tmp_path: Path
) -> None:
    job_id, token = unique("blip")
    fake_veo.add_scenario(token, fail_polls=1, fail_poll_status=500)
    run = run_worker(veo_env(stack_env, fake_veo), tmp_path, *veo_args(job_id, token))
    assert run.code == 0, run.stdout


def test_a_safety_filtered_video_is_a_permanent_failure_that_costs_nothing(
    stack_env: dict[str, str], fake_veo: FakeVeo, bucket: Any, tmp_path: Path
) -> None:
    job_id, token = unique("unsafe")
    reason = "The prompt violates the usage guidelines. Support codes: 12345"
    fake_veo.add_scenario(token, outcome="safety_filtered", rai_reasons=[reason])
    run = run_worker(veo_env(stack_env, fake_veo), tmp_path, *veo_args(job_id, token))

    assert run.code == 3, run.stdout
    assert run.result["status"] == "failed"
    assert run.result["reason"] == "SafetyFiltered"
    assert run.result["retryable"] is False
    assert run.result["cost_usd"] == "0"
    assert reason in run.result["message"]
    assert not [b.name for b in bucket.list_blobs(prefix=f"previews/{job_id}/preview_")]


@pytest.mark.parametrize(
    ("status", "code", "reason", "retryable"),
    [(500, 75, "ProviderUnavailable", True), (400, 3, "InvalidRequest", False)],
    ids=["a-veo-outage-is-retryable", "a-request-veo-rejects-is-permanent"],
)
def test_veo_refusing_the_request(
    stack_env: dict[str, str],
    fake_veo: FakeVeo,
    tmp_path: Path,
    status: int,
    code: int,
    reason: str,
    retryable: bool,
) -> None:
    job_id, token = unique(f"refused{status}")
    fake_veo.add_scenario(token, reject_first=1, reject_status=status)
    run = run_worker(veo_env(stack_env, fake_veo), tmp_path, *veo_args(job_id, token))
    assert run.code == code, run.stdout
    assert (run.result["reason"], run.result["retryable"]) == (reason, retryable)


def test_an_operation_that_fails_transiently_is_forgotten_so_the_retry_starts_afresh(
    stack_env: dict[str, str], fake_veo: FakeVeo, bucket: Any, tmp_path: Path
) -> None:
    job_id, token = unique("opfail")
    fake_veo.add_scenario(token, outcome="error", error_code=14, error_message="overloaded")
    run = run_worker(veo_env(stack_env, fake_veo), tmp_path, *veo_args(job_id, token))
    assert run.code == 75, run.stdout
    assert run.result["retryable"] is True
    assert "overloaded" in run.result["message"]
    assert bucket.get_blob(f"previews/{job_id}/operation.json") is None


def test_an_operation_that_never_finishes_hits_the_poll_deadline(
    stack_env: dict[str, str], fake_veo: FakeVeo, tmp_path: Path
) -> None:
    job_id, token = unique("never")
    fake_veo.add_scenario(token, outcome="never")
    env = veo_env(stack_env, fake_veo, GENVID_POLL_DEADLINE_SECONDS="1")
    run = run_worker(env, tmp_path, *veo_args(job_id, token))
    assert run.code == 3, run.stdout
    assert (run.result["reason"], run.result["retryable"]) == ("ProviderTimeout", False)
    assert fake_veo.stats(token)["poll_calls"] >= 2


def test_an_unreachable_veo_is_retryable(stack_env: dict[str, str], tmp_path: Path) -> None:
    env = worker_env(
        stack_env,
        GOOGLE_API_KEY="fake-vertex-key",
        GENVID_VEO_BASE_URL="http://127.0.0.1:1",  # nothing listens on port 1
    )
    job_id, token = unique("noveo")
    run = run_worker(env, tmp_path, *veo_args(job_id, token))
    assert run.code == 75, run.stdout
    assert (run.result["reason"], run.result["retryable"]) == ("ProviderUnavailable", True)
