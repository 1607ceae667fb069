"""The worker's pure parts: the result contract, names, configuration, the command line, the
classification of provider failures, and rendering into a non-seekable sink. No servers."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import av
import httpx
import httpx2
import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from genvid_contracts.worker import WorkerResult
from genvid_worker import cli, poster, result, synthetic
from genvid_worker.config import Provider, Settings, choose_provider, vertex_configured
from genvid_worker.request import GenerationRequest
from genvid_worker.result import Failed, Reason, WorkerError
from genvid_worker.storage import (
    Names,
    classify_storage_error,
    object_names,
    parse_gs_uri,
    timestamp,
)
from genvid_worker.veo import (
    PollPolicy,
    Veo,
    classify_api_error,
    classify_operation_error,
    generation_config,
    video_object,
)

SUCCESS_KEYS = {
    "status", "provider", "model", "bucket", "object", "poster_object", "size_bytes",
    "duration_seconds", "content_type", "cost_usd", "operation",
}  # fmt: skip
WORKER_ENV = (
    "GENVID_BUCKET", "GENVID_PROVIDER", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION", "GOOGLE_API_KEY", "GEMINI_API_KEY", "GENVID_VEO_BASE_URL",
    "GENVID_UPLOAD_CHUNK_BYTES",
)  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in WORKER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GENVID_BUCKET", "genvid-previews")
    return monkeypatch


def succeeded(**overrides: Any) -> WorkerResult:
    fields: dict[str, Any] = {
        "status": "succeeded",
        "provider": "veo",
        "model": "veo-3.0-fast-generate-001",
        "bucket": "genvid-previews",
        "object": "previews/j/preview_20261124T080102Z.mp4",
        "poster_object": "previews/j/poster_20261124T080102Z.jpg",
        "size_bytes": 1234,
        "duration_seconds": 4.0,
        "content_type": "video/mp4",
        "cost_usd": result.decimal_text(Decimal("0.60")),
        "operation": "publishers/google/models/m/operations/1",
    }
    return WorkerResult(**{**fields, **overrides})


# --- result contract -----------------------------------------------------------------------------


def test_exit_codes_distinguish_success_permanent_and_retryable_failures() -> None:
    assert result.exit_code(succeeded()) == 0
    assert result.exit_code(Failed(Reason.SAFETY_FILTERED, "no", retryable=False)) == 3
    assert result.exit_code(Failed(Reason.RATE_LIMITED, "later", retryable=True)) == 75


def test_success_document_has_exactly_the_contract_keys_and_money_as_a_string() -> None:
    document = json.loads(result.encode(succeeded()))
    assert set(document) == SUCCESS_KEYS
    assert document["status"] == "succeeded"
    assert document["cost_usd"] == "0.60"
    assert document["size_bytes"] == 1234
    assert document["operation"] == "publishers/google/models/m/operations/1"


def test_failure_document_says_why_whether_to_retry_and_charges_nothing() -> None:
    failure = Failed(Reason.SAFETY_FILTERED, "blocked: violence", retryable=False)
    document = json.loads(result.encode(failure))
    assert document == {
        "status": "failed",
        "reason": "SafetyFiltered",
        "message": "blocked: violence",
        "retryable": False,
        "cost_usd": "0",
    }


@pytest.mark.parametrize("filler", ["x", "é", '"', "🎬"])
def test_encoded_result_fits_the_termination_log_even_with_a_huge_message(filler: str) -> None:
    failure = Failed(Reason.PROVIDER_ERROR, filler * 10_000, retryable=False)
    data = result.encode(failure)
    assert len(data) <= result.TERMINATION_LOG_MAX_BYTES
    document = json.loads(data)
    assert document["reason"] == "ProviderError"
    assert document["message"].endswith("...")
    assert len(data) > result.TERMINATION_LOG_MAX_BYTES - 16  # shortened, not emptied


def test_cost_is_price_times_seconds_and_zero_without_a_price() -> None:
    assert result.decimal_text(result.cost_usd(Decimal("0.15"), 4)) == "0.60"
    assert result.decimal_text(result.cost_usd(None, 4)) == "0"
    assert result.decimal_text(result.cost_usd(Decimal("1E+1"), 4)) == "40"


# --- names ---------------------------------------------------------------------------------------


def test_object_names_share_the_job_prefix_and_carry_a_utc_timestamp() -> None:
    local = datetime(2026, 11, 24, 9, 1, 2, tzinfo=timezone(timedelta(hours=1)))
    names = object_names("vg-123", local)
    assert timestamp(local) == "20261124T080102Z"
    assert names.video == "previews/vg-123/preview_20261124T080102Z.mp4"
    assert names.poster == "previews/vg-123/poster_20261124T080102Z.jpg"
    assert names.operation_record == "previews/vg-123/operation.json"
    assert names.veo_output_prefix == "previews/vg-123/veo/"


def test_gs_uris_are_split_into_bucket_and_object() -> None:
    assert parse_gs_uri("gs://genvid-previews/a/b.mp4") == ("genvid-previews", "a/b.mp4")
    for bad in ("https://x/y", "gs://bucket", "gs:///name"):
        with pytest.raises(ValueError):
            parse_gs_uri(bad)


def http_error(status: int, message: str) -> api_exceptions.GoogleAPICallError:
    error: api_exceptions.GoogleAPICallError = api_exceptions.from_http_status(  # type: ignore[no-untyped-call]
        status, message
    )
    return error


def test_storage_failures_are_retryable_only_when_waiting_can_help() -> None:
    throttled = classify_storage_error(http_error(429, "slow down"))
    outage = classify_storage_error(http_error(503, "down"))
    network = classify_storage_error(requests.exceptions.ConnectionError("refused"))
    denied = classify_storage_error(http_error(403, "no"))
    gave_up = api_exceptions.RetryError("gave up", cause=None)  # type: ignore[no-untyped-call]
    exhausted = classify_storage_error(gave_up)
    assert throttled is not None and throttled.retryable
    assert outage is not None and outage.retryable
    assert network is not None and network.reason is Reason.STORAGE_UNAVAILABLE
    assert denied is not None and not denied.retryable and denied.reason is Reason.STORAGE_ERROR
    assert exhausted is not None and exhausted.retryable
    assert classify_storage_error(KeyError("unrelated")) is None


# --- configuration -------------------------------------------------------------------------------


def test_provider_is_synthetic_without_vertex_credentials(clean_env: pytest.MonkeyPatch) -> None:
    settings = cli.load_settings()
    assert not vertex_configured(settings)
    assert choose_provider(settings) is Provider.SYNTHETIC


@pytest.mark.parametrize(
    "env",
    [
        {"GOOGLE_API_KEY": "key"},
        {"GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_LOCATION": "us-central1"},
    ],
)
def test_provider_is_veo_when_vertex_credentials_are_configured(
    clean_env: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert choose_provider(cli.load_settings()) is Provider.VEO


def test_a_project_without_location_or_a_blank_key_is_not_vertex(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("GOOGLE_CLOUD_PROJECT", "p")
    clean_env.setenv("GOOGLE_API_KEY", "")
    assert choose_provider(cli.load_settings()) is Provider.SYNTHETIC


def test_explicit_provider_wins_command_line_first(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GOOGLE_API_KEY", "key")
    clean_env.setenv("GENVID_PROVIDER", "synthetic")
    settings = cli.load_settings()
    assert choose_provider(settings) is Provider.SYNTHETIC
    assert choose_provider(settings, Provider.VEO) is Provider.VEO


def test_missing_bucket_is_a_permanent_configuration_error(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.delenv("GENVID_BUCKET")
    with pytest.raises(WorkerError) as caught:
        cli.load_settings()
    assert caught.value.reason is Reason.CONFIGURATION_ERROR
    assert not caught.value.retryable
    assert "bucket" in caught.value.message


def test_upload_chunks_must_be_whole_resumable_chunks(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GENVID_UPLOAD_CHUNK_BYTES", "1000")
    with pytest.raises(WorkerError, match="multiple of 262144"):
        cli.load_settings()


def test_settings_read_the_sdk_and_client_library_variable_names(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    clean_env.setenv("GENVID_VEO_BASE_URL", "http://127.0.0.1:2")
    clean_env.setenv("GENVID_POLL_DEADLINE_SECONDS", "1.5")
    settings: Settings = cli.load_settings()
    assert settings.storage_emulator_host == "http://127.0.0.1:1"
    assert settings.veo_base_url == "http://127.0.0.1:2"
    assert settings.poll_deadline_seconds == 1.5


# --- command line --------------------------------------------------------------------------------


def test_a_full_command_line_is_parsed_into_a_request() -> None:
    request = cli.parse_request(
        [
            "--job_id", "vg-1", "--prompt", "  a cat  ", "--model", "veo-3.0-generate-001",
            "--duration_seconds", "6", "--aspect_ratio", "9:16", "--negative_prompt", "dogs",
            "--seed", "42", "--provider", "veo", "--price_usd_per_second", "0.40",
        ]
    )  # fmt: skip
    assert request.job_id == "vg-1"
    assert request.prompt == "a cat"
    assert request.duration_seconds == 6
    assert request.aspect_ratio == "9:16"
    assert request.negative_prompt == "dogs"
    assert request.seed == 42
    assert request.provider is Provider.VEO
    assert request.price_usd_per_second == Decimal("0.40")


def test_defaults_are_a_four_second_landscape_preview() -> None:
    request = cli.parse_request(["--job_id", "j", "--prompt", "p"])
    assert (request.duration_seconds, request.aspect_ratio) == (4, "16:9")
    assert request.model is None and request.provider is None and request.seed is None


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--prompt", "p"], "--job_id"),
        (["--job_id", "../etc", "--prompt", "p"], "--job_id"),
        (["--job_id", "a/b", "--prompt", "p"], "--job_id"),
        (["--job_id", "j", "--prompt", "   "], "--prompt"),
        (["--job_id", "j", "--prompt", "p" * 2001], "--prompt"),
        (["--job_id", "j", "--prompt", "p", "--aspect_ratio", "4:3"], "--aspect_ratio"),
        (["--job_id", "j", "--prompt", "p", "--duration_seconds", "0"], "--duration_seconds"),
        (["--job_id", "j", "--prompt", "p", "--duration_seconds", "four"], "--duration_seconds"),
        (["--job_id", "j", "--prompt", "p", "--seed", "-1"], "--seed"),
        (["--job_id", "j", "--prompt", "p", "--provider", "sora"], "--provider"),
        (["--job_id", "j", "--prompt", "p", "--price_usd_per_second", "-1"], "--price"),
        (["--job_id", "j", "--prompt", "p", "--price_usd_per_second", "NaN"], "--price"),
        (["--job_id", "j", "--prompt", "p", "--model", "../v1/x"], "--model"),
        (["--job_id", "j", "--prompt", "p", "--bogus", "1"], "--bogus"),
    ],
)
def test_bad_command_lines_are_permanent_invalid_requests(args: list[str], complaint: str) -> None:
    with pytest.raises(WorkerError) as caught:
        cli.parse_request(args)
    assert caught.value.reason is Reason.INVALID_REQUEST
    assert not caught.value.retryable
    assert complaint in caught.value.message


def test_bad_command_line_still_reports_through_the_termination_log(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    log_path = tmp_path / "termination-log"
    code = cli.main(["--job_id", "j", "--aspect_ratio", "1:1", "--termination_log", str(log_path)])
    assert code == 3
    document = json.loads(log_path.read_bytes())
    assert document["status"] == "failed"
    assert document["reason"] == "InvalidRequest"
    assert document["retryable"] is False
    assert "--prompt" in document["message"]


def test_missing_configuration_exits_permanent(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.delenv("GENVID_BUCKET")
    log_path = tmp_path / "termination-log"
    code = cli.main(["--job_id", "j", "--prompt", "p", "--termination_log", str(log_path)])
    assert code == 3
    assert json.loads(log_path.read_bytes())["reason"] == "ConfigurationError"


# --- Veo: classification -------------------------------------------------------------------------


def api_error(cls: type[genai_errors.APIError], code: int, status: str) -> genai_errors.APIError:
    return cls(code, {"error": {"code": code, "message": "scripted", "status": status}})


def client_error(code: int, status: str) -> genai_errors.APIError:
    return api_error(genai_errors.ClientError, code, status)


def server_error(code: int, status: str) -> genai_errors.APIError:
    return api_error(genai_errors.ServerError, code, status)


@pytest.mark.parametrize(
    ("error", "reason", "retry"),
    [
        (client_error(429, "RESOURCE_EXHAUSTED"), Reason.RATE_LIMITED, True),
        (server_error(500, "INTERNAL"), Reason.PROVIDER_UNAVAILABLE, True),
        (server_error(503, "UNAVAILABLE"), Reason.PROVIDER_UNAVAILABLE, True),
        (client_error(400, "INVALID_ARGUMENT"), Reason.INVALID_REQUEST, False),
        (client_error(403, "PERMISSION_DENIED"), Reason.CONFIGURATION_ERROR, False),
        (httpx.ConnectError("refused"), Reason.PROVIDER_UNAVAILABLE, True),
        (httpx.ReadTimeout("slow"), Reason.PROVIDER_UNAVAILABLE, True),
        (httpx2.ConnectError("refused"), Reason.PROVIDER_UNAVAILABLE, True),  # SDK 3.x client
        (httpx2.ReadTimeout("slow"), Reason.PROVIDER_UNAVAILABLE, True),
    ],
)
def test_sdk_failures_are_classified(error: Exception, reason: Reason, retry: bool) -> None:
    classified = classify_api_error(error)
    assert classified is not None
    assert (classified.reason, classified.retryable) == (reason, retry)


def test_errors_that_are_not_api_errors_are_left_alone() -> None:
    assert classify_api_error(ZeroDivisionError()) is None


@pytest.mark.parametrize("code", [4, 8, 10, 13, 14])
def test_operation_errors_with_transient_grpc_codes_are_retryable(code: int) -> None:
    assert classify_operation_error({"code": code, "message": "m"}).retryable


@pytest.mark.parametrize(
    ("code", "reason"),
    [(3, Reason.INVALID_REQUEST), (9, Reason.INVALID_REQUEST), (7, Reason.PROVIDER_ERROR)],
)
def test_other_operation_errors_are_permanent(code: int, reason: Reason) -> None:
    failure = classify_operation_error({"code": code, "message": "bad prompt"})
    assert (failure.reason, failure.retryable) == (reason, False)
    assert "bad prompt" in failure.message


def done_operation(response: dict[str, Any] | None = None, **extra: Any) -> Any:
    payload: dict[str, Any] = {"name": "m/operations/1", "done": True, **extra}
    if response is not None:
        payload["response"] = response
    return types.GenerateVideosOperation.from_api_response(payload, is_vertex_ai=True)


def test_a_finished_operation_points_at_its_video_in_our_bucket() -> None:
    operation = done_operation({"videos": [{"gcsUri": "gs://bkt/previews/j/veo/1/sample_0.mp4"}]})
    assert video_object(operation, "bkt") == "previews/j/veo/1/sample_0.mp4"


def test_safety_filtered_result_is_permanent_with_the_reasons_for_the_user() -> None:
    operation = done_operation(
        {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["violence", "code 123"]}
    )
    with pytest.raises(WorkerError) as caught:
        video_object(operation, "b")
    assert caught.value.reason is Reason.SAFETY_FILTERED
    assert not caught.value.retryable
    assert "violence; code 123" in caught.value.message


@pytest.mark.parametrize(
    "response",
    [
        {"videos": [{"gcsUri": "gs://elsewhere/x.mp4"}]},
        {"videos": [{"bytesBase64Encoded": "AAAA"}]},
        {"raiMediaFilteredCount": 0},
    ],
)
def test_unusable_results_are_permanent_provider_errors(response: dict[str, Any]) -> None:
    with pytest.raises(WorkerError) as caught:
        video_object(done_operation(response), "b")
    assert caught.value.reason is Reason.PROVIDER_ERROR


def test_an_operation_error_is_classified_when_reading_the_result() -> None:
    with pytest.raises(WorkerError) as caught:
        video_object(done_operation(error={"code": 3, "message": "bad"}), "b")
    assert caught.value.reason is Reason.INVALID_REQUEST


def test_generation_config_asks_for_one_video_written_to_the_bucket() -> None:
    request = GenerationRequest("j", "p", 4, "9:16", model="m", negative_prompt="n", seed=7)
    config = generation_config(request, "gs://b/previews/j/veo/")
    assert config.number_of_videos == 1
    assert config.output_gcs_uri == "gs://b/previews/j/veo/"
    assert (config.duration_seconds, config.aspect_ratio) == (4, "9:16")
    assert (config.negative_prompt, config.seed) == ("n", 7)


# --- Veo: polling, with a scripted client and clock ----------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ScriptedOperations:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls = 0

    def get(self, operation: Any) -> Any:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else {"done": False}
        if isinstance(answer, Exception):
            raise answer
        return types.GenerateVideosOperation.from_api_response(
            {"name": operation.name, **answer}, is_vertex_ai=True
        )


class ScriptedClient:
    def __init__(self, answers: list[Any]) -> None:
        self.operations = ScriptedOperations(answers)


class MemoryStore:
    """Just enough of a store for the operation record."""

    name = "bkt"

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_if_exists(self, name: str) -> None:
        self.deleted.append(name)


def veo_with(
    answers: list[Any], clock: FakeClock, errors_allowed: int = 2, store: MemoryStore | None = None
) -> Veo:
    return Veo(
        client=ScriptedClient(answers),  # type: ignore[arg-type]
        store=store or MemoryStore(),  # type: ignore[arg-type]
        names=Names(prefix="previews/j/", video="v.mp4", poster="p.jpg"),
        policy=PollPolicy(
            interval_seconds=10, deadline_seconds=60, max_consecutive_errors=errors_allowed
        ),
        clock=clock.time,
        sleep=clock.sleep,
    )


def started(name: str = "m/operations/1") -> Any:
    return types.GenerateVideosOperation.model_validate({"name": name, "done": False})


def test_polling_stops_at_the_deadline_counted_from_the_operations_start() -> None:
    clock = FakeClock()
    veo = veo_with([], clock)
    with pytest.raises(WorkerError) as caught:
        veo.wait(started(), started_at=clock.now - 30)  # resumed: half the deadline is gone
    assert caught.value.reason is Reason.PROVIDER_TIMEOUT
    assert not caught.value.retryable
    assert clock.now == pytest.approx(1030.0)


def test_a_few_transient_poll_errors_are_absorbed() -> None:
    clock = FakeClock()
    blip = api_error(genai_errors.ServerError, 503, "UNAVAILABLE")
    veo = veo_with([blip, blip, {"done": True, "response": {"videos": []}}], clock)
    done = veo.wait(started(), started_at=clock.now)
    assert done.done


def test_too_many_transient_poll_errors_in_a_row_are_retryable() -> None:
    clock = FakeClock()
    blip = api_error(genai_errors.ServerError, 503, "UNAVAILABLE")
    veo = veo_with([blip, blip, blip], clock, errors_allowed=2)
    with pytest.raises(WorkerError) as caught:
        veo.wait(started(), started_at=clock.now)
    assert caught.value.retryable
    assert caught.value.reason is Reason.PROVIDER_UNAVAILABLE


def test_a_retryable_operation_failure_forgets_the_operation() -> None:
    clock = FakeClock()
    store = MemoryStore()
    answers = [{"done": True, "error": {"code": 14, "message": "try again"}}]
    veo = veo_with(answers, clock, store=store)
    with pytest.raises(WorkerError) as caught:
        veo.wait(started(), started_at=clock.now)
    assert caught.value.retryable
    assert store.deleted == ["previews/j/operation.json"]


def test_an_operation_veo_no_longer_knows_is_forgotten_and_retried() -> None:
    clock = FakeClock()
    store = MemoryStore()
    veo = veo_with([client_error(404, "NOT_FOUND")], clock, store=store)
    with pytest.raises(WorkerError) as caught:
        veo.wait(started(), started_at=clock.now)
    assert (caught.value.reason, caught.value.retryable) == (Reason.OPERATION_LOST, True)
    assert store.deleted == ["previews/j/operation.json"]


def test_a_resumed_operation_is_fetched_without_waiting_first() -> None:
    clock = FakeClock()
    veo = veo_with([{"done": True, "response": {"videos": []}}], clock)
    resumed = types.GenerateVideosOperation.model_validate({"name": "m/operations/1"})
    veo.wait(resumed, started_at=clock.now)
    assert clock.now == 1000.0


# --- rendering and posters -----------------------------------------------------------------------


class OneWaySink:
    """Write-only and unseekable, like an upload stream."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)

    def seekable(self) -> bool:
        return False


@pytest.mark.parametrize(("aspect", "size"), [("16:9", (640, 360)), ("9:16", (360, 640))])
def test_synthetic_render_streams_a_decodable_h264_mp4(aspect: str, size: tuple[int, int]) -> None:
    sink = OneWaySink()
    spec = synthetic.RenderSpec(
        prompt="A lighthouse in a storm", duration_seconds=2, aspect_ratio=aspect
    )
    rendered = synthetic.render(spec, sink)
    assert rendered.frame_count == 48
    assert rendered.first_frame.size == size
    sink.buffer.seek(0)
    with av.open(sink.buffer, mode="r") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == size
        frames = list(container.decode(stream))
    assert len(frames) == 48
    # Something moves: the first and last frames differ.
    assert frames[0].to_ndarray().tobytes() != frames[-1].to_ndarray().tobytes()


def test_poster_is_a_jpeg_of_the_first_frame() -> None:
    buffer = io.BytesIO()
    spec = synthetic.RenderSpec(prompt="p", duration_seconds=1, aspect_ratio="16:9")
    synthetic.render(spec, buffer)
    buffer.seek(0)
    facts = poster.probe(buffer)
    assert facts.codec == "h264"
    assert facts.duration_seconds == pytest.approx(1.0, abs=1 / 24)
    jpeg = poster.jpeg_bytes(facts.first_frame)
    assert jpeg[:3] == b"\xff\xd8\xff"
    with Image.open(io.BytesIO(jpeg)) as image:
        assert (image.format, image.size) == ("JPEG", (640, 360))


def test_same_request_same_colours_different_seed_different_colours() -> None:
    spec = synthetic.RenderSpec(prompt="p", duration_seconds=1, aspect_ratio="16:9", seed=1)
    again = synthetic.RenderSpec(prompt="p", duration_seconds=1, aspect_ratio="16:9", seed=1)
    other = synthetic.RenderSpec(prompt="p", duration_seconds=1, aspect_ratio="16:9", seed=2)
    assert synthetic.palette(spec) == synthetic.palette(again)
    assert synthetic.palette(spec) != synthetic.palette(other)


def test_succeeded_timestamps_are_utc() -> None:
    assert timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "20260102T030405Z"
