"""A running pipeline (operator, api, fake Veo) and its generations, as the end-to-end tests
drive them: through the api's HTTP contract, the cluster and the database."""

from __future__ import annotations

import contextlib
import signal
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from genvid_devstack import apps
from genvid_devstack.process import Process
from genvid_devstack.state import State
from genvid_devstack.veo import FakeVeo
from support.api import Account, ApiClient
from support.job_stream import TERMINAL
from support.kube import kubectl, kubectl_json
from support.polling import eventually
from support.sse import SseEvent, SseReader, sse

EVENT_SECONDS = 120  # a worker retried with backoff may be silent for a while


async def job_row(database_url: str, generation_id: str) -> asyncpg.Record:
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT * FROM video_generation_jobs WHERE id = $1", uuid.UUID(generation_id)
        )
    finally:
        await connection.close()
    assert row is not None
    return row


def statuses(events: list[SseEvent]) -> list[str]:
    return [event.data["status"] for event in events]


async def until_final(reader: SseReader, limit: int | None = None) -> list[SseEvent]:
    """Events up to a final status, `limit` events, or the stream's end."""
    events: list[SseEvent] = []
    while (event := await reader.next_event(EVENT_SECONDS)) is not None:
        events.append(event)
        if event.data.get("status") in TERMINAL or len(events) == limit:
            break
    return events


@dataclass
class Generation:
    """A user's generation on a running api, and what the tests ask the api about it."""

    client: ApiClient
    user: Account
    id: str

    async def get(self) -> dict[str, Any]:
        response = await self.client.http.get(f"/generations/{self.id}", headers=self.user.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def cancel(self) -> int:
        response = await self.client.http.post(
            f"/generations/{self.id}/cancel", headers=self.user.auth
        )
        return response.status_code

    def stream(
        self, last_event_id: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[SseReader]:
        headers = dict(self.user.auth)
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        return sse(self.client.http, f"/generations/{self.id}/events", headers)

    async def events(
        self, *, last_event_id: str | None = None, limit: int | None = None
    ) -> list[SseEvent]:
        async with self.stream(last_event_id) as reader:
            return await until_final(reader, limit)

    async def wait_final(self, seconds: float = 120) -> dict[str, Any]:
        async def finished() -> dict[str, Any] | None:
            body = await self.get()
            return body if body["status"] in TERMINAL else None

        return await eventually(
            finished, what=f"generation {self.id} to finish", seconds=seconds, interval=0.25
        )


async def submit(client: ApiClient, user: Account, prompt: str, **body: Any) -> Generation:
    """POST /generate as `user`; the generation is accepted. The answer reads the row once the
    resource exists, and with an operator watching it may have started already."""
    response = await client.generate(user, prompt=prompt, **body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("QUEUED", "RUNNING"), response.text
    return Generation(client, user, response.json()["id"])


async def generate(client: ApiClient, prompt: str, **body: Any) -> Generation:
    """POST /generate as a new user; the generation is queued."""
    return await submit(client, await client.register("u"), prompt, **body)


@dataclass(frozen=True)
class PipelineSettings:
    """What a test module changes in its pipeline: the operator's and api's environment, and
    the worker's (its ConfigMap and Secret)."""

    env: dict[str, str] = field(default_factory=dict)
    worker: dict[str, str] = field(default_factory=dict)


@dataclass
class Pipeline:
    env: dict[str, str]
    namespace: str
    state: State
    api: ApiClient
    veo: FakeVeo
    operator: Process

    def kill_operator(self) -> None:
        """SIGKILL: no clean-up handler runs, as when a node dies."""
        self.operator.popen.send_signal(signal.SIGKILL)
        self.operator.stop()

    async def finished_unwatched(self, words: str) -> Generation:
        """A generation seen RUNNING whose worker then succeeds while no operator runs (it
        was killed); the caller restarts it."""
        generation, _ = await self.generate(words, polls_until_done=15)
        assert statuses(await generation.events(limit=2)) == ["QUEUED", "RUNNING"]
        self.kill_operator()
        await eventually(
            lambda: any(p["status"].get("phase") == "Succeeded" for p in self.pods(generation.id)),
            what="the worker to finish",
            seconds=90,
            interval=0.25,
        )
        return generation

    def restart_operator(self) -> None:
        self.operator = apps.start_operator(self.state, self.env, self.namespace)

    async def generate(self, words: str, **scenario: Any) -> tuple[Generation, str]:
        """A generation of a unique prompt, which the fake Veo answers as `scenario` says."""
        prompt = f"{words} {uuid.uuid4().hex[:6]}"
        if scenario:
            self.veo.add_scenario(prompt, **scenario)
        return await generate(self.api, prompt), prompt

    async def operator_metrics(self, state: State | None = None) -> dict[str, Metric]:
        """The operator's Prometheus metrics by family name (a counter's without `_total`);
        `state`: those of another operator started with that state."""
        port = (state or self.state).port("operator-metrics")
        response = await self.api.http.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200, response.text
        return {family.name: family for family in text_string_to_metric_families(response.text)}

    def kubectl(self, *args: str) -> str:
        return kubectl(self.env["KUBECONFIG"], "-n", self.namespace, *args).stdout

    def get(self, *args: str) -> dict[str, Any]:
        """`kubectl get ARGS -o json` in the pipeline's namespace."""
        return kubectl_json(self.env["KUBECONFIG"], "-n", self.namespace, "get", *args)

    def pods(self, generation_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(
            "pods", "-l", f"genvid.io/generation={generation_id}"
        )["items"]
        return items


async def running_worker_pid(pipeline: Pipeline, generation_id: str) -> int:
    """The process id of the generation's running worker (the process kubelet's container id)."""

    def probe() -> int | None:
        for pod in pipeline.pods(generation_id):
            for container in pod.get("status", {}).get("containerStatuses") or []:
                if "running" in (container.get("state") or {}):
                    return int(container["containerID"].removeprefix("process://"))
        return None

    return await eventually(probe, what="a running worker", seconds=90, interval=0.25)


async def usage(pipeline: Pipeline, user: Account) -> dict[str, Any]:
    """`GET /me/usage` as `user`."""
    response = await pipeline.api.http.get("/me/usage", headers=user.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def until_status(generation: Generation, status: str, reason: str | None = None) -> None:
    """Until the api answers `generation` with `status` (and `reason`, if given)."""

    async def reached() -> bool:
        body = await generation.get()
        return body["status"] == status and (reason is None or body["reason"] == reason)

    await eventually(reached, what=f"{generation.id} {status} {reason or ''}", seconds=120)
