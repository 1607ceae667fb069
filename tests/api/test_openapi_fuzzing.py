"""Schema-driven fuzzing (schemathesis + hypothesis) of every operation in the app's OpenAPI
document, against a real api process on the test stack, signed in.

Each operation gets generated requests that fit the schema, requests that do not, and (for
operations with path parameters) requests aimed at real objects: a published video, a comment
and a generation the fuzzing user may act on, a user it may follow. No response may be a 5xx,
and every response must match what the document says (status code, content type, body schema).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from genvid_api.config import Settings
from genvid_api.main import create_app
from support.api import ApiClient
from support.api_process import ApiProcess
from support.social import Social

pytestmark = pytest.mark.stack

# Per operation and generation mode; GENVID_FUZZ_EXAMPLES=500 for a long run.
EXAMPLES = int(os.environ.get("GENVID_FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
STREAMS = {  # server-sent events: a valid request streams for as long as the client listens
    "GET /events",
    "GET /generations/{generation_id}/events",
}


def operations() -> list[str]:
    app = create_app(
        Settings.model_validate({"database_url": "postgresql://u:p@db/x", "jwt_secret": "s" * 64})
    )
    return sorted(
        f"{method.upper()} {path}"
        for path, items in app.openapi()["paths"].items()
        for method in items
        if f"{method.upper()} {path}" not in STREAMS
    )


@pytest.fixture(scope="module")
def server(start_api: Callable[..., ApiProcess]) -> Iterator[str]:
    process = start_api("fuzz")
    try:
        yield process.url
    finally:
        process.stop()
        assert "Traceback" not in process.log.read_text(errors="replace"), process.log_tail()


@pytest.fixture(scope="module")
async def targets(api: ApiClient, db: asyncpg.Pool, stack_env: dict[str, str]) -> dict[str, Any]:
    """The fuzzing user, and real objects for path parameters and bodies."""
    social = Social(api=api, db=db, bucket=stack_env["GENVID_BUCKET"])
    fuzzer, owner = await api.register("fuzzer"), await api.register("owner")
    video = await social.publish(owner, title="fuzz me", description="a published video")
    comment = await api.http.post(
        f"/videos/{video['id']}/comments", json={"body": "the fuzzer's"}, headers=fuzzer.auth
    )
    generation = await api.generate(fuzzer)
    return {
        "auth": fuzzer.auth,
        # Logging out everywhere ends a session: not the fuzzer's, or it would fuzz on as 401s.
        "ends_sessions": (await api.register("leaver")).auth,
        "path": {
            "video_id": video["id"],
            "comment_id": comment.json()["id"],
            "generation_id": generation.json()["id"],
            "username": owner.username,
        },
        "publishable": [await social.succeeded_generation(fuzzer) for _ in range(3)],
    }


@pytest.fixture(scope="module")
def schema(server: str) -> Any:
    return schemathesis.openapi.from_url(f"{server}/openapi.json")


@pytest.mark.parametrize("operation", operations())
def test_no_server_error_and_responses_match_the_document(
    schema: Any, server: str, targets: dict[str, Any], operation: str
) -> None:
    method, path = operation.split(" ", 1)
    api_operation = schema[path][method]
    strategies = [
        api_operation.as_strategy(GenerationMode.POSITIVE),
        api_operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    real = {name: value for name, value in targets["path"].items() if f"{{{name}}}" in path}
    if real:
        strategies.append(api_operation.as_strategy(path_parameters=real))
    if operation == "POST /videos":

        def publishable(case: Any) -> Any:
            if isinstance(case.body, dict):
                case.body["generation_id"] = targets["publishable"][0]
            return case

        strategies.append(api_operation.as_strategy().map(publishable))
    session = requests.Session()
    auth = targets["ends_sessions"] if operation == "POST /auth/logout-all" else targets["auth"]

    @settings(
        max_examples=EXAMPLES * len(strategies),
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def fuzz(case: Any) -> None:
        response = case.call(base_url=server, session=session, headers=auth, timeout=15)
        case.validate_response(response, checks=CHECKS, headers=auth)

    fuzz()
