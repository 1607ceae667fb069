"""The operator's own list of every VideoGeneration name (its check for resources deleted while
no operator watched) on the real apiserver: page after page, metadata only."""

from __future__ import annotations

import json
import uuid

import pytest
from kubernetes_asyncio import client, config

from genvid_contracts.resource import GROUP, KIND, VERSION
from genvid_operator.cluster import Cluster, KubeApi
from support.kube import kubectl

pytestmark = pytest.mark.stack


async def test_every_generation_name_is_listed_across_pages(
    stack_env: dict[str, str], namespace: str
) -> None:
    names = {str(uuid.uuid4()) for _ in range(5)}
    items = [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"prompt": "a listed fox", "owner": str(uuid.uuid4())},
        }
        for name in names
    ]
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    kubeconfig = stack_env["KUBECONFIG"]
    kubectl(kubeconfig, "-n", namespace, "create", "-f", "-", input=document)
    configuration = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    cluster = Cluster(KubeApi(configuration, connections=2))
    try:
        assert await cluster.generation_names(namespace, page=2) == names
        assert await cluster.generation_names(namespace) == names
        assert await cluster.generation_names(f"{namespace}-none") == set()
    finally:
        await cluster.close()
