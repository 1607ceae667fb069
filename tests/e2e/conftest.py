"""Fixtures of the end-to-end tests: a pipeline of a module's own (operator, api, database,
namespace and fake Veo), set up as the module's `pipeline_settings` say. The stack's own api
(`stack_api`) is a fixture of tests/conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from genvid_devstack import apps
from genvid_devstack.state import State
from genvid_devstack.veo import start_fake_veo
from support.api import ApiClient, api_http_client
from support.database import scratch_database
from support.kube import KUBECTL
from support.pipeline import Pipeline, PipelineSettings


@pytest.fixture(scope="module")
async def pipeline_database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    """A database of the pipeline's own: another api's outbox must not adopt its rows."""
    async with scratch_database(stack_env, "genvid_e2e") as url:
        yield url


@pytest.fixture(scope="module")
def pipeline_settings() -> PipelineSettings:
    """A module overrides this fixture to run its pipeline with other settings."""
    return PipelineSettings()


@pytest.fixture(scope="module")
async def pipeline(
    stack_env: dict[str, str],
    pipeline_database: str,
    pipeline_settings: PipelineSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Pipeline]:
    """An operator and an api of the module's own on a new namespace, whose worker talks to
    the fake Veo server through the real google-genai SDK."""
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
        **pipeline_settings.worker,
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
        **pipeline_settings.env,
    }
    apps.migrate(env)
    operator = apps.start_operator(state, env, namespace)
    port = state.port("api")
    api = apps.start_api(state, env, namespace, port)
    http = api_http_client(f"http://127.0.0.1:{port}")
    pipeline = Pipeline(env, namespace, state, ApiClient(http=http), veo, operator)
    try:
        async with http:
            yield pipeline
    finally:
        api.stop()
        pipeline.operator.stop()  # the one running now, after any restart
        veo.stop()
