"""The fake Veo server answers the real google-genai SDK the way Vertex AI does.

The protocol was taken from google-genai 3.4.0 in Vertex AI mode (see genvid_devstack.veo and
/work/shared/reference/veo-wire-protocol.md); the first test fails when the installed SDK is
another version, as a reminder to check the fake against it again.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest
from google import genai
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]
from google.genai import errors, types
from google.oauth2.credentials import Credentials

from genvid_devstack.veo import SDK_PROTOCOL, FakeVeo, start_fake_veo

PROTOCOL_SDK_VERSION = "3.4.0"
MODEL = "veo-3.0-fast-generate-001"


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeVeo]:
    """Without a storage emulator: inline videos only."""
    server = start_fake_veo(tmp_path_factory.mktemp("fake-veo"))
    try:
        yield server
    finally:
        server.stop()


def api_key_client(fake: FakeVeo) -> genai.Client:
    return genai.Client(
        vertexai=True, api_key="k", http_options=types.HttpOptions(base_url=fake.base_url)
    )


def token() -> str:
    return f"tok{uuid.uuid4().hex[:10]}"


def generate(client: genai.Client, prompt: str, **config: Any) -> types.GenerateVideosOperation:
    return client.models.generate_videos(
        model=MODEL,
        source=types.GenerateVideosSource(prompt=prompt),
        config=types.GenerateVideosConfig(number_of_videos=1, **config),
    )


def poll(client: genai.Client, operation: types.GenerateVideosOperation, limit: int = 10) -> Any:
    for _ in range(limit):
        if operation.done:
            return operation
        operation = client.operations.get(operation)
    raise AssertionError(f"not done after {limit} polls")


def test_the_fake_matches_the_installed_sdk_version() -> None:
    assert PROTOCOL_SDK_VERSION in SDK_PROTOCOL
    assert genai.__version__ == PROTOCOL_SDK_VERSION, (
        f"google-genai is {genai.__version__}; re-check genvid_devstack.veo against its wire "
        f"protocol (taken from {PROTOCOL_SDK_VERSION}), then update PROTOCOL_SDK_VERSION"
    )


def test_inline_video_is_a_real_mp4_of_the_requested_length(fake: FakeVeo) -> None:
    client = api_key_client(fake)
    prompt = token()
    fake.add_scenario(prompt, polls_until_done=2)
    operation = generate(client, prompt, duration_seconds=4, aspect_ratio="9:16")
    assert operation.name and operation.name.startswith(f"publishers/google/models/{MODEL}/")
    assert not operation.done

    done = poll(client, operation)
    video = done.response.generated_videos[0].video
    assert video.mime_type == "video/mp4"
    with av.open(io.BytesIO(video.video_bytes), mode="r") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (90, 160)
        assert float(container.duration or 0) / av.time_base == pytest.approx(4, abs=1 / 24)
    assert fake.stats(prompt)["poll_calls"] == 3


def test_project_and_location_paths_and_bearer_tokens_work(fake: FakeVeo) -> None:
    client = genai.Client(
        vertexai=True,
        project="genvid-test",
        location="us-central1",
        credentials=Credentials(token="fake-token"),  # type: ignore[no-untyped-call]
        http_options=types.HttpOptions(base_url=fake.base_url),
    )
    prompt = token()
    operation = generate(client, prompt)
    assert operation.name is not None
    assert operation.name.startswith("projects/genvid-test/locations/us-central1/publishers/")
    assert poll(client, operation).response.generated_videos


def test_requests_without_credentials_are_refused(fake: FakeVeo) -> None:
    body = {"instances": [{"prompt": token()}], "parameters": {"sampleCount": 1}}
    with httpx.Client(trust_env=False) as http:
        response = http.post(
            f"{fake.base_url}/v1beta1/publishers/google/models/{MODEL}:predictLongRunning",
            json=body,
        )
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_scripted_failures_come_back_as_the_sdks_errors(fake: FakeVeo) -> None:
    client = api_key_client(fake)
    throttled, outage = token(), token()
    fake.add_scenario(throttled, reject_first=1, reject_status=429)
    fake.add_scenario(outage, reject_first=5, reject_status=500)
    with pytest.raises(errors.ClientError) as rate_limited:
        generate(client, throttled)
    assert (rate_limited.value.code, rate_limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert generate(client, throttled).name  # the second call is accepted
    with pytest.raises(errors.ServerError) as unavailable:
        generate(client, outage)
    assert unavailable.value.code == 500
    stats = fake.stats(throttled)
    assert (stats["predict_calls"], stats["operations_started"]) == (2, 1)


def test_invalid_parameters_are_rejected_with_400(fake: FakeVeo) -> None:
    with pytest.raises(errors.ClientError) as caught:
        generate(api_key_client(fake), token(), aspect_ratio="4:3")
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")


def test_safety_filtered_and_failed_operations(fake: FakeVeo) -> None:
    client = api_key_client(fake)
    unsafe, broken = token(), token()
    fake.add_scenario(unsafe, outcome="safety_filtered", rai_reasons=["blocked: reason 1"])
    fake.add_scenario(broken, outcome="error", error_code=3, error_message="bad prompt")

    filtered = poll(client, generate(client, unsafe)).response
    assert filtered.rai_media_filtered_count == 1
    assert filtered.rai_media_filtered_reasons == ["blocked: reason 1"]
    assert not filtered.generated_videos

    failed = poll(client, generate(client, broken))
    assert failed.error == {"code": 3, "message": "bad prompt"}


def test_latest_matching_scenario_wins_and_others_are_untouched(fake: FakeVeo) -> None:
    client = api_key_client(fake)
    word = token()
    fake.add_scenario(word, outcome="safety_filtered")
    fake.add_scenario(f"{word} now", outcome="never")
    never = generate(client, f"{word} now")
    for _ in range(3):
        never = client.operations.get(never)
    assert not never.done
    assert poll(client, generate(client, f"only {word}")).response.rai_media_filtered_count == 1
    assert poll(client, generate(client, token())).response.generated_videos


def test_a_resumed_operation_is_found_by_its_name_alone(fake: FakeVeo) -> None:
    client = api_key_client(fake)
    prompt = token()
    fake.add_scenario(prompt, polls_until_done=1)
    started = generate(client, prompt)
    resumed = types.GenerateVideosOperation.model_validate({"name": started.name})
    assert poll(client, resumed).response.generated_videos
    assert fake.stats(prompt)["operations_started"] == 1


def test_unknown_operations_are_not_found(fake: FakeVeo) -> None:
    client = api_key_client(fake)
    ghost = types.GenerateVideosOperation.model_validate(
        {"name": f"publishers/google/models/{MODEL}/operations/nope"}
    )
    with pytest.raises(errors.ClientError) as caught:
        client.operations.get(ghost)
    assert caught.value.code == 404


def test_scenarios_are_validated(fake: FakeVeo) -> None:
    with pytest.raises(Exception, match="400"):
        fake.add_scenario(token(), outcome="explode")


@pytest.mark.stack
def test_with_storage_uri_the_video_is_written_to_the_bucket(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = start_fake_veo(
        tmp_path_factory.mktemp("fake-veo-gcs"), stack_env["STORAGE_EMULATOR_HOST"]
    )
    try:
        client = api_key_client(server)
        bucket_name = stack_env["GENVID_BUCKET"]
        prefix = f"fake-veo-test/{uuid.uuid4().hex[:8]}/"
        done = poll(
            client, generate(client, token(), output_gcs_uri=f"gs://{bucket_name}/{prefix}")
        )
        video = done.response.generated_videos[0].video
        assert video.video_bytes is None
        assert video.uri.startswith(f"gs://{bucket_name}/{prefix}")
        assert video.uri.endswith("/sample_0.mp4")
        [operation] = server.operations()
        assert operation["parameters"]["storageUri"] == f"gs://{bucket_name}/{prefix}"

        gcs = storage.Client(
            project="genvid-local",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": stack_env["STORAGE_EMULATOR_HOST"]},
        )
        blob = gcs.bucket(bucket_name).get_blob(video.uri.removeprefix(f"gs://{bucket_name}/"))
        assert blob is not None and blob.content_type == "video/mp4"
        with av.open(io.BytesIO(blob.download_as_bytes()), mode="r") as container:
            assert container.streams.video[0].codec_context.name == "h264"
    finally:
        server.stop()


def test_control_api_reports_json(fake: FakeVeo) -> None:
    prompt = token()
    fake.add_scenario(prompt, polls_until_done=3)
    stats = fake.stats(prompt)
    assert stats == {"predict_calls": 0, "operations_started": 0, "poll_calls": 0, "prompts": {}}
    json.dumps(fake.operations(prompt))
