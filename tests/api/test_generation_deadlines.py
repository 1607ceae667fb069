"""POST /generate's `deadline_seconds`: its bounds, `deadline_at` in the answers and the row,
`spec.deadline` on the resource (also when the outbox creates it), and replays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from genvid_api.config import Settings
from support.api import ApiClient, make_settings
from support.jobs import insert_job
from support.kube import kubectl_json
from support.polling import eventually

pytestmark = pytest.mark.stack


def spec_of(stack_env: dict[str, str], settings: Settings, name: str) -> dict[str, Any]:
    resource = kubectl_json(stack_env["KUBECONFIG"], "-n", settings.namespace, "get", "vg", name)
    spec: dict[str, Any] = resource["spec"]
    return spec


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_deadline_is_answered_stored_and_on_the_resource(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings, db: asyncpg.Pool
) -> None:
    account = await api.register()
    response = await api.generate(account, prompt="a comet", deadline_seconds=600)
    assert response.status_code == 202, response.text
    body = response.json()
    deadline = parse(body["deadline_at"])
    # Whole seconds, 600 of them after its acceptance (truncated to the second).
    created = parse(body["created_at"])
    assert deadline == (created + timedelta(seconds=600)).replace(microsecond=0)
    row = await db.fetchrow(
        "SELECT deadline_at, created_at FROM video_generation_jobs WHERE id = $1",
        uuid.UUID(body["id"]),
    )
    assert row["deadline_at"] == deadline
    assert spec_of(stack_env, api_settings, body["id"])["deadline"] == deadline.astimezone(
        UTC
    ).strftime("%Y-%m-%dT%H:%M:%SZ")

    shown = await api.http.get(f"/generations/{body['id']}", headers=account.auth)
    assert parse(shown.json()["deadline_at"]) == deadline
    listed = await api.http.get("/generations", headers=account.auth)
    assert [parse(item["deadline_at"]) for item in listed.json()["items"]] == [deadline]


async def test_without_a_deadline_nothing_is_set(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings
) -> None:
    account = await api.register()
    response = await api.generate(account, prompt="a comet")
    assert response.status_code == 202, response.text
    assert response.json()["deadline_at"] is None
    assert "deadline" not in spec_of(stack_env, api_settings, response.json()["id"])


@pytest.mark.parametrize(
    ("deadline", "error"),
    [
        (59, "deadline_out_of_range"),  # below GENVID_MIN_DEADLINE_SECONDS (60)
        (86_401, "deadline_out_of_range"),  # above GENVID_MAX_DEADLINE_SECONDS (86,400)
        (0, "greater_than_equal"),
        (-5, "greater_than_equal"),
        ("600", "int_type"),
        (600.5, "int_type"),
    ],
)
async def test_a_deadline_out_of_bounds_is_422_naming_the_field(
    api: ApiClient, db: asyncpg.Pool, deadline: Any, error: str
) -> None:
    account = await api.register()
    response = await api.generate(account, prompt="a comet", deadline_seconds=deadline)
    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert (detail["loc"], detail["type"]) == (["body", "deadline_seconds"], error)
    count = await db.fetchval(
        "SELECT count(*) FROM video_generation_jobs WHERE user_id = $1", uuid.UUID(account.user_id)
    )
    assert count == 0


@pytest.mark.parametrize("deadline", [60, 86_400])
async def test_the_bounds_themselves_are_accepted(api: ApiClient, deadline: int) -> None:
    account = await api.register()
    response = await api.generate(account, prompt="a comet", deadline_seconds=deadline)
    assert response.status_code == 202, response.text


def test_the_bounds_are_settings_and_must_make_sense(
    stack_env: dict[str, str], api_migrated: str
) -> None:
    settings = make_settings(
        stack_env,
        api_migrated,
        "ns",
        GENVID_MIN_DEADLINE_SECONDS="5",
        GENVID_MAX_DEADLINE_SECONDS="9",
    )
    assert (settings.min_deadline_seconds, settings.max_deadline_seconds) == (5, 9)
    with pytest.raises(ValidationError, match="MIN_DEADLINE_SECONDS is above"):
        make_settings(
            stack_env,
            api_migrated,
            "ns",
            GENVID_MIN_DEADLINE_SECONDS="10",
            GENVID_MAX_DEADLINE_SECONDS="9",
        )


async def test_a_replay_keeps_the_first_deadline(api: ApiClient, db: asyncpg.Pool) -> None:
    account = await api.register()
    key = f"due-{uuid.uuid4()}"
    first = await api.generate(account, prompt="a comet", deadline_seconds=600, idempotency_key=key)
    assert first.status_code == 202, first.text
    # As if the first request had been accepted an hour ago: a replay now must not move it.
    await db.execute(
        "UPDATE video_generation_jobs SET created_at = created_at - interval '1 hour', "
        "deadline_at = deadline_at - interval '1 hour' WHERE id = $1",
        uuid.UUID(first.json()["id"]),
    )
    again = await api.generate(account, prompt="a comet", deadline_seconds=600, idempotency_key=key)
    assert again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"]
    hour = timedelta(hours=1)
    assert parse(again.json()["deadline_at"]) == parse(first.json()["deadline_at"]) - hour


@pytest.mark.parametrize(
    ("first", "replay"),
    [
        ({"deadline_seconds": 600}, {"deadline_seconds": 601}),
        ({}, {"deadline_seconds": 600}),
        ({"deadline_seconds": 600}, {}),
    ],
)
async def test_a_replay_asking_for_another_deadline_is_422(
    api: ApiClient, first: dict[str, Any], replay: dict[str, Any]
) -> None:
    account = await api.register()
    key = f"due-{uuid.uuid4()}"
    accepted = await api.generate(account, prompt="a comet", idempotency_key=key, **first)
    assert accepted.status_code == 202, accepted.text
    response = await api.generate(account, prompt="a comet", idempotency_key=key, **replay)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "Idempotency-Key was already used with a different request"
    }


async def test_the_outbox_creates_a_resource_with_its_deadline(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings, db: asyncpg.Pool
) -> None:
    """As if the api crashed between committing the row and creating the resource."""
    account = await api.register()
    deadline = datetime(2026, 11, 24, 8, 10, tzinfo=UTC)
    job_id = await insert_job(db, account.user_id, deadline_at=deadline)

    created = "SELECT resource_created FROM video_generation_jobs WHERE id = $1"
    await eventually(
        lambda: db.fetchval(created, uuid.UUID(job_id)), what="the outbox to create the resource"
    )
    assert spec_of(stack_env, api_settings, job_id)["deadline"] == "2026-11-24T08:10:00Z"
