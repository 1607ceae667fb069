"""A fake Veo: the Vertex AI endpoints the google-genai SDK calls for `generate_videos`.

The wire protocol is the one google-genai 3.4.0 speaks in Vertex AI mode (observed by pointing
the real SDK at a local server; see /work/shared/reference/veo-wire-protocol.md), so the worker
runs its real SDK code against it through `HttpOptions(base_url=...)`:

* `POST /v1beta1/[projects/P/locations/L/]publishers/google/models/M:predictLongRunning`
  `{"instances": [{"prompt"}], "parameters": {"sampleCount", "durationSeconds", "aspectRatio",
  "storageUri", ...}}` answers `{"name": "<model path>/operations/<id>"}`.
* `POST /v1beta1/<model path>:fetchPredictOperation` `{"operationName"}` answers
  `{"name", "done": false}` while running, then `done: true` with a `response` (videos as
  `gcsUri` when `storageUri` was given, else inline `bytesBase64Encoded`; or
  `raiMediaFilteredCount`/`raiMediaFilteredReasons` and no video), or an `error`.

Videos are small real MP4s (H.264, 160x90 or 90x160, the requested seconds at 24 fps) rendered
here with PyAV and, for `storageUri`, uploaded to the Cloud Storage emulator under
`<storageUri><operation id>/sample_0.mp4`, as Veo does into a real bucket.

Behaviour is scripted per prompt through a control API, so concurrent tests only need
distinct prompts:

* `POST /_control/scenarios` `{"prompt_contains": "...", "behaviour": {...}}` (see `Behaviour`;
  the latest matching scenario wins, no match means an immediate success),
* `GET /_control/stats?prompt_contains=...` counts of predictLongRunning calls (all, and those
  that started an operation) and of polls, to prove a retried worker resumed instead of paying
  twice,
* `GET /_control/operations?prompt_contains=...` what each operation was asked,
* `POST /_control/reset`, `GET /_control/health`.

Run it with `python -m genvid_devstack.veo --port N [--storage-emulator-host URL]`, or
`start_fake_veo` for a supervised child process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import sys
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from genvid_devstack.process import (
    Process,
    free_port,
    http_ok,
    local_http,
    spawn,
    stop_on_failure,
    wait_until,
)

SDK_PROTOCOL = "google-genai 3.4.0 (Vertex AI mode)"
HOST = "127.0.0.1"
_STARTUP_TIMEOUT = 30.0
_MODEL_PATH = re.compile(
    r"^(?:projects/[^/]+/locations/[^/]+/)?publishers/google/models/[A-Za-z0-9._-]+$"
)
_GS_URI = re.compile(r"^gs://(?P<bucket>[a-z0-9][a-z0-9._-]+)/(?P<prefix>.*)$")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"


class Behaviour(BaseModel):
    """How the fake answers for prompts that match a scenario."""

    model_config = ConfigDict(extra="forbid")

    reject_first: int = Field(
        default=0,
        ge=0,
        description="Answer this many predictLongRunning calls for the prompt with "
        "`reject_status` before accepting one (429 throttling, 500 outage, 400 invalid).",
    )
    reject_status: int = Field(default=429, ge=400, le=599)
    polls_until_done: int = Field(
        default=0, ge=0, description="Polls answered `done: false` before the outcome (slow)."
    )
    fail_polls: int = Field(
        default=0, ge=0, description="The first polls of each operation answer `fail_poll_status`."
    )
    fail_poll_status: int = Field(default=503, ge=400, le=599)
    outcome: Literal["video", "safety_filtered", "error", "never"] = "video"
    error_code: int = Field(default=13, description="google.rpc.Code for outcome `error`.")
    error_message: str = "Internal error while generating the video."
    rai_reasons: list[str] = Field(
        default_factory=lambda: [
            "The prompt could not be submitted. It contains words that violate the usage "
            "guidelines. Support codes: 17301594"
        ]
    )


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_contains: str = Field(min_length=1)
    behaviour: Behaviour = Field(default_factory=Behaviour)


@dataclass
class Operation:
    op_id: str
    prompt: str
    model_path: str
    parameters: dict[str, Any]
    behaviour: Behaviour
    polls: int = 0
    video: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The operation's resource name, as Vertex AI gives it: under the model's path."""
        return f"{self.model_path}/operations/{self.op_id}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prompt": self.prompt,
            "model_path": self.model_path,
            "parameters": self.parameters,
            "polls": self.polls,
            "behaviour": self.behaviour.model_dump(),
        }


@dataclass
class PromptStats:
    predict_calls: int = 0
    operations_started: int = 0
    poll_calls: int = 0


@dataclass
class FakeVeoState:
    storage_emulator_host: str | None
    scenarios: list[Scenario] = field(default_factory=list)
    operations: dict[str, Operation] = field(default_factory=dict)
    stats: defaultdict[str, PromptStats] = field(default_factory=lambda: defaultdict(PromptStats))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def behaviour_for(self, prompt: str) -> Behaviour:
        for scenario in reversed(self.scenarios):
            if scenario.prompt_contains in prompt:
                return scenario.behaviour
        return Behaviour()


# --- pure helpers ------------------------------------------------------------------------


def google_error(status: int, message: str) -> JSONResponse:
    """The error body Google APIs send, which the SDK parses into ClientError/ServerError."""
    body = {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status)}}
    return JSONResponse(body, status_code=status)


def validate_predict(body: Any) -> tuple[str, dict[str, Any]]:
    """The prompt and parameters of a predictLongRunning body, or ValueError saying why not."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        raise ValueError("instances must hold exactly one instance")
    prompt = instances[0].get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("instances[0].prompt must be a non-empty string")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError("parameters must be an object")
    duration = parameters.get("durationSeconds", 8)
    if not isinstance(duration, int) or not 1 <= duration <= 8:
        raise ValueError("parameters.durationSeconds must be an integer from 1 to 8")
    if parameters.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
        raise ValueError("parameters.aspectRatio must be 16:9 or 9:16")
    if parameters.get("sampleCount", 1) not in (1, 2, 3, 4):
        raise ValueError("parameters.sampleCount must be 1 to 4")
    storage_uri = parameters.get("storageUri")
    if storage_uri is not None and (
        not isinstance(storage_uri, str) or not _GS_URI.match(storage_uri)
    ):
        raise ValueError("parameters.storageUri must be gs://bucket/prefix")
    return prompt, parameters


def render_mp4(duration_seconds: int, aspect_ratio: str, fps: int = 24) -> bytes:
    """A tiny real H.264 MP4 (moov at the end, as a plain muxer writes it) with a moving bar."""
    import av  # here, not at the top: starting the fake should not pay for codecs
    import numpy as np

    width, height = (160, 90) if aspect_ratio == "16:9" else (90, 160)
    out = io.BytesIO()
    container: Any = av.open(out, mode="w", format="mp4")
    with container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        total = duration_seconds * fps
        for index in range(total):
            pixels = np.full((height, width, 3), (30, 60, 120), dtype=np.uint8)
            x = int(index / max(1, total - 1) * (width - 10))
            pixels[:, x : x + 10] = (250, 200, 0)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


# --- the app -----------------------------------------------------------------------------


def create_app(storage_emulator_host: str | None = None) -> Starlette:
    if storage_emulator_host and "://" not in storage_emulator_host:
        storage_emulator_host = f"http://{storage_emulator_host}"
    state = FakeVeoState(storage_emulator_host=storage_emulator_host)

    async def vertex(request: Request) -> JSONResponse:
        path = request.path_params["path"]
        if not (request.headers.get("x-goog-api-key") or request.headers.get("authorization")):
            return google_error(401, "Request is missing required authentication credential.")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return google_error(400, "Invalid JSON payload.")
        model_path, _, method = path.rpartition(":")
        if not _MODEL_PATH.match(model_path):
            return google_error(404, f"Unknown resource {model_path!r}.")
        if method == "predictLongRunning":
            return await predict(state, model_path, body)
        if method == "fetchPredictOperation":
            return await fetch(state, model_path, body)
        return google_error(404, f"Unknown method {method!r}.")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "protocol": SDK_PROTOCOL})

    async def add_scenario(request: Request) -> JSONResponse:
        try:
            scenario = Scenario.model_validate(await request.json())
        except (ValidationError, json.JSONDecodeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        state.scenarios.append(scenario)
        return JSONResponse(scenario.model_dump(), status_code=201)

    async def list_scenarios(request: Request) -> JSONResponse:
        return JSONResponse([s.model_dump() for s in state.scenarios])

    async def stats(request: Request) -> JSONResponse:
        needle = request.query_params.get("prompt_contains", "")
        total = PromptStats()
        prompts: dict[str, dict[str, int]] = {}
        for prompt, counts in state.stats.items():
            if needle in prompt:
                prompts[prompt] = vars(counts).copy()
                total.predict_calls += counts.predict_calls
                total.operations_started += counts.operations_started
                total.poll_calls += counts.poll_calls
        return JSONResponse({**vars(total), "prompts": prompts})

    async def operations(request: Request) -> JSONResponse:
        needle = request.query_params.get("prompt_contains", "")
        found = [op.describe() for op in state.operations.values() if needle in op.prompt]
        return JSONResponse(found)

    async def reset(request: Request) -> JSONResponse:
        state.scenarios.clear()
        state.operations.clear()
        state.stats.clear()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/v1beta1/{path:path}", vertex, methods=["POST"]),
            Route("/_control/health", health, methods=["GET"]),
            Route("/_control/scenarios", add_scenario, methods=["POST"]),
            Route("/_control/scenarios", list_scenarios, methods=["GET"]),
            Route("/_control/stats", stats, methods=["GET"]),
            Route("/_control/operations", operations, methods=["GET"]),
            Route("/_control/reset", reset, methods=["POST"]),
        ]
    )


async def predict(state: FakeVeoState, model_path: str, body: Any) -> JSONResponse:
    try:
        prompt, parameters = validate_predict(body)
    except ValueError as exc:
        return google_error(400, str(exc))
    counts = state.stats[prompt]
    counts.predict_calls += 1
    behaviour = state.behaviour_for(prompt)
    if counts.predict_calls <= behaviour.reject_first:
        status = behaviour.reject_status
        return google_error(status, f"Scripted failure {status} (call {counts.predict_calls}).")
    if parameters.get("storageUri") and not state.storage_emulator_host:
        return google_error(400, "storageUri needs the fake to know the storage emulator.")
    counts.operations_started += 1
    operation = Operation(
        op_id=uuid.uuid4().hex,
        prompt=prompt,
        model_path=model_path,
        parameters=parameters,
        behaviour=behaviour,
    )
    state.operations[operation.name] = operation
    return JSONResponse({"name": operation.name})


async def fetch(state: FakeVeoState, model_path: str, body: Any) -> JSONResponse:
    name = body.get("operationName") if isinstance(body, dict) else None
    operation = state.operations.get(name) if isinstance(name, str) else None
    if operation is None or operation.model_path != model_path:
        return google_error(404, f"Operation {name!r} not found.")
    state.stats[operation.prompt].poll_calls += 1
    operation.polls += 1
    behaviour = operation.behaviour
    if operation.polls <= behaviour.fail_polls:
        return google_error(behaviour.fail_poll_status, "Scripted poll failure.")
    answered = operation.polls - behaviour.fail_polls
    if behaviour.outcome == "never" or answered <= behaviour.polls_until_done:
        return JSONResponse({"name": name, "done": False})
    if behaviour.outcome == "error":
        error = {"code": behaviour.error_code, "message": behaviour.error_message}
        return JSONResponse({"name": name, "done": True, "error": error})
    if behaviour.outcome == "safety_filtered":
        response = {
            "@type": _RESPONSE_TYPE,
            "raiMediaFilteredCount": 1,
            "raiMediaFilteredReasons": behaviour.rai_reasons,
        }
        return JSONResponse({"name": name, "done": True, "response": response})
    async with state.lock:
        if operation.video is None:
            operation.video = await _make_video(state, operation)
    response = {"@type": _RESPONSE_TYPE, "raiMediaFilteredCount": 0, "videos": [operation.video]}
    return JSONResponse({"name": name, "done": True, "response": response})


async def _make_video(state: FakeVeoState, operation: Operation) -> dict[str, Any]:
    parameters = operation.parameters
    data = await asyncio.to_thread(
        render_mp4, parameters.get("durationSeconds", 8), parameters.get("aspectRatio", "16:9")
    )
    storage_uri = parameters.get("storageUri")
    if not storage_uri:
        return {"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": "video/mp4"}
    match = _GS_URI.match(storage_uri)
    assert match is not None and state.storage_emulator_host  # checked when it started
    prefix = match["prefix"]
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    object_name = f"{prefix}{operation.op_id}/sample_0.mp4"
    await _upload(state.storage_emulator_host, match["bucket"], object_name, data)
    return {"gcsUri": f"gs://{match['bucket']}/{object_name}", "mimeType": "video/mp4"}


async def _upload(emulator_host: str, bucket: str, name: str, data: bytes) -> None:
    """A simple media upload through the emulator's JSON API (no client library needed)."""
    import httpx

    url = f"{emulator_host.rstrip('/')}/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o"
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        response = await client.post(
            url,
            params={"uploadType": "media", "name": name},
            content=data,
            headers={"Content-Type": "video/mp4"},
        )
        response.raise_for_status()


# --- running it --------------------------------------------------------------------------


@dataclass
class FakeVeo:
    """A running fake, and the control API as methods for tests."""

    base_url: str
    process: Process | None = None

    def add_scenario(self, prompt_contains: str, **behaviour: Any) -> dict[str, Any]:
        payload = {"prompt_contains": prompt_contains, "behaviour": behaviour}
        result: dict[str, Any] = self._call("POST", "/_control/scenarios", payload)
        return result

    def stats(self, prompt_contains: str = "") -> dict[str, Any]:
        query = urllib.parse.urlencode({"prompt_contains": prompt_contains})
        result: dict[str, Any] = self._call("GET", f"/_control/stats?{query}")
        return result

    def operations(self, prompt_contains: str = "") -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"prompt_contains": prompt_contains})
        result: list[dict[str, Any]] = self._call("GET", f"/_control/operations?{query}")
        return result

    def reset(self) -> None:
        self._call("POST", "/_control/reset", {})

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with local_http.open(request, timeout=10) as response:
            return json.loads(response.read())


def start_fake_veo(
    log_dir: Path, storage_emulator_host: str | None = None, port: int | None = None
) -> FakeVeo:
    """Start the fake as a supervised child process on a loopback port and wait until it serves."""
    port = port or free_port(HOST)
    argv: list[str] = [sys.executable, "-m", "genvid_devstack.veo", "--port", str(port)]
    if storage_emulator_host:
        argv += ["--storage-emulator-host", storage_emulator_host]
    process = spawn("fake-veo", argv, log_dir=log_dir, env=os.environ)
    base_url = f"http://{HOST}:{port}"
    with stop_on_failure(process):
        wait_until(
            lambda: http_ok(f"{base_url}/_control/health"),
            timeout=_STARTUP_TIMEOUT,
            process=process,
        )
    return FakeVeo(base_url=base_url, process=process)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m genvid_devstack.veo", description=__doc__)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--storage-emulator-host", default=os.environ.get("STORAGE_EMULATOR_HOST"))
    args = parser.parse_args(argv)
    app = create_app(args.storage_emulator_host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
