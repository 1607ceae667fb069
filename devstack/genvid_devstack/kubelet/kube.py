"""API plumbing shared by the kubelet's loops: clients per identity, raw JSON calls, list+watch.

Objects are handled as the API serves them (camelCase dicts), not as generated models: the pure
modules work on that shape, and a status patch is built from it without a conversion layer.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# The server ends each watch after this long; the client gives up a little later, so a stream
# that went silent (a dropped connection, a restarted apiserver) is noticed and reopened.
WATCH_SECONDS = 240
_CLIENT_GRACE_SECONDS = 30
REQUEST_TIMEOUT = 30


async def api_client(kubeconfig: Path) -> client.ApiClient:
    """A client with `kubeconfig`'s identity; the kubelet holds one per identity it uses."""
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration=configuration)


async def raw(call: Awaitable[Any]) -> Obj:
    """Await an API call made with `_preload_content=False`; the JSON body, or ApiException.

    Used where the generated models get in the way: watch events are dicts already, and some
    responses (a Binding's Status) do not deserialize into the model the client expects.
    """
    response = await call
    try:
        if response.status >= 300:
            raise ApiException(status=response.status, reason=await response.text())
        body: Obj = await response.json()
        return body
    finally:
        response.release()


@dataclass(frozen=True)
class Listed:
    """A full list: the caller reconciles against it (objects may have gone meanwhile)."""

    items: list[Obj]


@dataclass(frozen=True)
class Event:
    type: str  # ADDED, MODIFIED or DELETED
    object: Obj


async def list_watch(
    list_call: Callable[..., Awaitable[Any]], **selectors: Any
) -> AsyncIterator[Listed | Event]:
    """List, then watch from the list's resourceVersion, forever.

    A watch that ends (server timeout) is reopened from the last version seen; one whose version
    has expired (410 Gone) or that failed otherwise starts over with a new list, which the caller
    treats as the truth.
    """
    while True:
        try:
            listed = await raw(
                list_call(**selectors, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
            )
        except (ApiException, aiohttp.ClientError, TimeoutError) as error:
            log.warning("list failed, retrying: %s", error)
            await asyncio.sleep(1)
            continue
        version = listed["metadata"]["resourceVersion"]
        yield Listed(listed.get("items") or [])
        try:
            async for event in _watch_from(list_call, version, selectors):
                yield event
        except ApiException as error:
            if error.status != 410:
                log.warning("watch failed, listing again: %s", error)
                await asyncio.sleep(1)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("watch connection lost, listing again: %s", error)
            await asyncio.sleep(1)


async def _watch_from(
    list_call: Callable[..., Awaitable[Any]], version: str, selectors: dict[str, Any]
) -> AsyncIterator[Event]:
    while True:
        # return_type "object" keeps events as dicts instead of building models.
        async with watch.Watch(return_type="object") as stream:
            async for event in stream.stream(
                list_call,
                **selectors,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _request_timeout=WATCH_SECONDS + _CLIENT_GRACE_SECONDS,
            ):
                kind = event["type"]
                obj = event["raw_object"]
                version = obj["metadata"]["resourceVersion"]
                if kind != "BOOKMARK":
                    yield Event(kind, obj)


def cluster_ca_pem(kubeconfig: Path) -> str:
    """The CA of the kubeconfig's current cluster, which also signs the cluster's client certs."""
    loaded = yaml.safe_load(kubeconfig.read_text())
    contexts = {c["name"]: c["context"] for c in loaded.get("contexts") or []}
    clusters = {c["name"]: c["cluster"] for c in loaded.get("clusters") or []}
    cluster = clusters[contexts[loaded["current-context"]]["cluster"]]
    if "certificate-authority-data" in cluster:
        return base64.b64decode(cluster["certificate-authority-data"]).decode()
    ca_path = Path(cluster["certificate-authority"])
    if not ca_path.is_absolute():
        ca_path = kubeconfig.parent / ca_path
    return ca_path.read_text()
