"""Fixtures of the dev stack's tests: a Kubernetes client of the stack's control plane, and
the per-test namespace once pods can run in it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from support.polling import eventually


@pytest.fixture
async def api(stack_env: dict[str, str]) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=stack_env["KUBECONFIG"], client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
async def namespace(namespace: str, api: client.ApiClient) -> str:
    """The shared per-test namespace, once the default ServiceAccount that pods need exists."""
    core = client.CoreV1Api(api)
    await eventually(
        lambda: _default_service_account(core, namespace), what="ServiceAccount", seconds=60
    )
    return namespace


async def _default_service_account(core: client.CoreV1Api, namespace: str) -> bool | None:
    try:
        await core.read_namespaced_service_account("default", namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return True
