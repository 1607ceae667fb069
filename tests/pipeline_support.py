"""A small client of GenVid's HTTP contract for end-to-end tests, and process helpers."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

KUBECTL = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "kubectl"
FINAL = {"SUCCEEDED", "FAILED", "CANCELED", "REJECTED"}
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, what: str, timeout: float = 90) -> T:
    """Poll until `probe` returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


@dataclass
class SseEvent:
    id: int
    data: dict[str, Any]


@dataclass
class User:
    api: GenVidClient
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def generate(self, prompt: str, **options: Any) -> dict[str, Any]:
        response = self.api.http.post(
            "/generate", json={"prompt": prompt, **options}, headers=self.headers
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def get(self, generation_id: str) -> dict[str, Any]:
        response = self.api.http.get(f"/generations/{generation_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def cancel(self, generation_id: str) -> httpx.Response:
        return self.api.http.post(f"/generations/{generation_id}/cancel", headers=self.headers)

    def events(
        self, generation_id: str, *, last_event_id: int | None = None, limit: int | None = None
    ) -> Iterator[SseEvent]:
        """The generation's SSE stream, until a final status, `limit` events, or its end."""
        headers = dict(self.headers)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        count = 0
        with self.api.http.stream(
            "GET", f"/generations/{generation_id}/events", headers=headers, timeout=120
        ) as response:
            assert response.status_code == 200, response.read().decode()
            for event in parse_sse(response.iter_lines()):
                yield event
                count += 1
                if event.data.get("status") in FINAL or (limit is not None and count >= limit):
                    return

    def wait_final(self, generation_id: str, timeout: float = 120) -> dict[str, Any]:
        return eventually(
            lambda: (body := self.get(generation_id))["status"] in FINAL and body,
            what=f"generation {generation_id} to finish",
            timeout=timeout,
        )


def parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    event_id: int | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data and event_id is not None:
                yield SseEvent(event_id, json.loads("\n".join(data)))
            event_id, data = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("id:"):
            event_id = int(line[3:].strip())
        elif line.startswith("data:"):
            data.append(line[5:].strip())


class GenVidClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, trust_env=False)

    def new_user(self) -> User:
        name = f"u{uuid.uuid4().hex[:12]}"
        password = "correct horse battery staple"
        response = self.http.post(
            "/auth/register",
            json={"email": f"{name}@example.com", "username": name, "password": password},
        )
        assert response.status_code == 201, response.text
        token = self.http.post("/auth/token", data={"username": name, "password": password})
        assert token.status_code == 200, token.text
        return User(self, name, token.json()["access_token"])


def kubectl(kubeconfig: str, *args: str) -> str:
    result = subprocess.run(
        [KUBECTL, *args],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def kubectl_json(kubeconfig: str, *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(kubectl(kubeconfig, *args, "-o", "json"))
    return document


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
