"""POST /generate, the outbox, reading, cancelling and signed URLs, against the real stack."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]
from nats.js import JetStreamContext

from genvid_api.config import Settings
from genvid_api.models import Generation
from genvid_api.queries import generations
from genvid_contracts.events import STREAM_NAME, job_subject
from support.api import ApiClient, in_process_api, make_settings
from support.jobs import insert_job
from support.kube import kubectl
from support.polling import eventually

pytestmark = pytest.mark.stack


def get_resource(stack_env: dict[str, str], namespace: str, name: str) -> dict[str, Any] | None:
    out = kubectl(
        stack_env["KUBECONFIG"], "get", "vg", "-n", namespace, name, "-o", "json",
        "--ignore-not-found",
    ).stdout  # fmt: skip
    return json.loads(out) if out.strip() else None


def owned_resources(stack_env: dict[str, str], namespace: str, user_id: str) -> list[str]:
    out = kubectl(
        stack_env["KUBECONFIG"], "get", "vg", "-n", namespace, "-l", f"genvid.io/owner={user_id}",
        "-o", "jsonpath={.items[*].metadata.name}",
    ).stdout  # fmt: skip
    return out.split()


# ---------------------------------------------------------------------------------------------
# POST /generate


async def test_generate_queues_a_job_and_creates_its_resource(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings, db: asyncpg.Pool
) -> None:
    account = await api.register()
    response = await api.generate(
        account,
        prompt="a red fox\nrunning through snow",
        duration_seconds=6,
        aspect_ratio="9:16",
        negative_prompt="people",
        seed=42,
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "QUEUED"
    assert job["prompt"] == "a red fox\nrunning through snow"
    assert job["model"] == "veo-3.0-fast-generate-001"
    assert (job["duration_seconds"], job["aspect_ratio"], job["seed"]) == (6, "9:16", 42)
    assert job["video_url"] is None and job["cancel_requested"] is False

    resource = get_resource(stack_env, api_settings.namespace, job["id"])
    assert resource is not None
    assert resource["metadata"]["labels"] == {
        "app.kubernetes.io/part-of": "genvid",
        "genvid.io/owner": account.user_id,
    }
    assert resource["spec"] == {
        "prompt": "a red fox\nrunning through snow",
        "model": "veo-3.0-fast-generate-001",
        "durationSeconds": 6,
        "aspectRatio": "9:16",
        "negativePrompt": "people",
        "seed": 42,
        "owner": account.user_id,
        "cancel": False,
    }
    flag = await db.fetchval(
        "SELECT resource_created FROM video_generation_jobs WHERE id = $1", uuid.UUID(job["id"])
    )
    assert flag is True


async def test_defaults_and_limits_that_are_accepted(api: ApiClient) -> None:
    account = await api.register()
    response = await api.generate(account, prompt="p" * 2000)
    assert response.status_code == 202, response.text
    assert (response.json()["duration_seconds"], response.json()["aspect_ratio"]) == (4, "16:9")
    response = await api.generate(
        account, prompt="tabs\tand\r\nnewlines are text", duration_seconds=1,
        model="veo-3.0-generate-001", seed=4294967295,
    )  # fmt: skip
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n\t "}, "prompt"),
        ({"prompt": "p" * 2001}, "prompt"),
        ({"prompt": "bell\u0007"}, "prompt"),
        ({"prompt": "nul\u0000byte"}, "prompt"),
        ({"prompt": "c1 control \u0085"}, "prompt"),
        ({"model": "veo-9-imaginary"}, "model"),
        ({"duration_seconds": 0}, "duration_seconds"),
        ({"duration_seconds": 9}, "duration_seconds"),
        ({"duration_seconds": "4"}, "duration_seconds"),
        ({"duration_seconds": 4.5}, "duration_seconds"),
        ({"aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"negative_prompt": " "}, "negative_prompt"),
        ({"seed": -1}, "seed"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_invalid_requests_are_422_naming_the_field(
    api: ApiClient, db: asyncpg.Pool, body: dict[str, Any], field: str
) -> None:
    account = await api.register()
    response = await api.generate(account, **body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(error["loc"][-1] == field for error in detail), detail
    count = await db.fetchval(
        "SELECT count(*) FROM video_generation_jobs WHERE user_id = $1", uuid.UUID(account.user_id)
    )
    assert count == 0


async def test_missing_prompt_and_bad_idempotency_key_are_422(api: ApiClient) -> None:
    account = await api.register()
    response = await api.http.post("/generate", json={}, headers=account.auth)
    assert response.status_code == 422
    response = await api.generate(account, idempotency_key="x" * 256)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_generate_needs_a_token(api: ApiClient) -> None:
    response = await api.http.post("/generate", json={"prompt": "fox"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


# ---------------------------------------------------------------------------------------------
# Idempotency


async def test_same_idempotency_key_returns_the_same_job_once(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings, db: asyncpg.Pool
) -> None:
    account = await api.register()
    key = f"retry-{uuid.uuid4()}"
    first = await api.generate(account, prompt="a whale", idempotency_key=key)
    again = await api.generate(account, prompt="a whale", idempotency_key=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["id"] == again.json()["id"]
    rows = await db.fetchval(
        "SELECT count(*) FROM video_generation_jobs WHERE user_id = $1", uuid.UUID(account.user_id)
    )
    assert rows == 1
    assert owned_resources(stack_env, api_settings.namespace, account.user_id) == [
        first.json()["id"]
    ]
    resource = get_resource(stack_env, api_settings.namespace, first.json()["id"])
    assert resource is not None and resource["spec"]["idempotencyKey"] == key


async def test_concurrent_retries_with_one_key_make_one_job(
    api: ApiClient, db: asyncpg.Pool
) -> None:
    account = await api.register()
    key = f"race-{uuid.uuid4()}"
    responses = await asyncio.gather(
        *(api.generate(account, prompt="a storm", idempotency_key=key) for _ in range(6))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    rows = await db.fetchval(
        "SELECT count(*) FROM video_generation_jobs WHERE user_id = $1", uuid.UUID(account.user_id)
    )
    assert rows == 1


async def test_same_key_with_a_different_body_is_422(api: ApiClient) -> None:
    account = await api.register()
    key = f"k-{uuid.uuid4()}"
    assert (await api.generate(account, prompt="a cat", idempotency_key=key)).status_code == 202
    for change in ({"prompt": "a dog"}, {"prompt": "a cat", "duration_seconds": 5}):
        response = await api.generate(account, idempotency_key=key, **change)
        assert response.status_code == 422
        assert response.json() == {
            "detail": "Idempotency-Key was already used with a different request"
        }


async def test_idempotency_keys_are_per_user(api: ApiClient) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    key = f"shared-{uuid.uuid4()}"
    a = await api.generate(alice, prompt="a cat", idempotency_key=key)
    b = await api.generate(bob, prompt="a cat", idempotency_key=key)
    assert (a.status_code, b.status_code) == (202, 202)
    assert a.json()["id"] != b.json()["id"]


# ---------------------------------------------------------------------------------------------
# The outbox


async def test_outbox_creates_the_resource_of_a_row_left_behind(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings, db: asyncpg.Pool
) -> None:
    """As if the api crashed between committing the row and creating the resource."""
    account = await api.register()
    job_id = await insert_job(db, account.user_id, seed=7)
    assert get_resource(stack_env, api_settings.namespace, job_id) is None

    async def created() -> bool:
        return bool(
            await db.fetchval(
                "SELECT resource_created FROM video_generation_jobs WHERE id = $1",
                uuid.UUID(job_id),
            )
        )

    await eventually(created, what="the outbox to flag the row")
    resource = get_resource(stack_env, api_settings.namespace, job_id)
    assert resource is not None
    assert resource["spec"]["owner"] == account.user_id
    assert resource["spec"]["seed"] == 7


class HeldCreates:
    """The api's real resource client, with each create held until the test lets it go."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def create(self, *args: Any, **kwargs: Any) -> bool:
        self.waiting.set()
        await self.release.wait()
        return bool(await self._real.create(*args, **kwargs))


async def test_no_database_connection_is_held_while_the_apiserver_creates_the_resource(
    api_settings: Settings, stack_env: dict[str, str], db: asyncpg.Pool
) -> None:
    """A slow apiserver must not exhaust the pool: POST /generate gives its connection back
    before the create; a cancel that comes meanwhile still reaches the resource."""
    async with in_process_api(api_settings.model_copy(update={"outbox_enabled": False})) as app:
        ctx = app.app.state.ctx
        held = HeldCreates(ctx.kube)
        ctx.kube = held
        account = await app.register()
        posting = asyncio.create_task(app.generate(account, prompt="held at the apiserver"))
        await asyncio.wait_for(held.waiting.wait(), 30)
        assert ctx.engine.pool.checkedout() == 0
        job_id = await db.fetchval(
            "SELECT id FROM video_generation_jobs WHERE user_id = $1", uuid.UUID(account.user_id)
        )
        cancelling = asyncio.create_task(
            app.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
        )
        await eventually(
            lambda: db.fetchval(
                "SELECT cancel_requested FROM video_generation_jobs WHERE id = $1", job_id
            ),
            what="the cancel to be recorded",
        )
        held.release.set()
        assert (await posting).status_code == 202
        assert (await cancelling).status_code == 202
    resource = get_resource(stack_env, api_settings.namespace, str(job_id))
    assert resource is not None and resource["spec"]["cancel"] is True
    row = await db.fetchrow(
        "SELECT resource_created, cancel_delivered_at FROM video_generation_jobs WHERE id = $1",
        job_id,
    )
    assert row["resource_created"] and row["cancel_delivered_at"] is not None


@pytest.fixture
def unreachable_kubeconfig(stack_env: dict[str, str], tmp_path: Path) -> str:
    """The stack's kubeconfig, pointing at a port where no apiserver listens."""
    config = yaml.safe_load(Path(stack_env["KUBECONFIG"]).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:1"
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


async def test_job_accepted_while_the_apiserver_is_down_gets_its_resource_later(
    api: ApiClient,
    stack_env: dict[str, str],
    api_settings: Settings,
    unreachable_kubeconfig: str,
) -> None:
    """One replica cannot reach the apiserver: it still accepts the job (the row is the
    promise), and a healthy replica's outbox creates the resource."""
    broken = api_settings.model_copy(
        update={"kubeconfig": unreachable_kubeconfig, "outbox_enabled": False}
    )
    async with in_process_api(broken) as replica:
        account = await replica.register()
        response = await replica.generate(account, prompt="patience")
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["status"] == "QUEUED"

    async def created() -> bool:
        return get_resource(stack_env, api_settings.namespace, job_id) is not None

    await eventually(created, what="the healthy replica's outbox to create the resource")


async def test_outbox_rejects_a_row_the_apiserver_refuses(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings, db: asyncpg.Pool
) -> None:
    account = await api.register()
    job_id = await insert_job(db, account.user_id, model="Not A Valid Model")

    async def rejected() -> asyncpg.Record | None:
        row = await db.fetchrow(
            "SELECT status, reason, message, event_seq, finished_at FROM video_generation_jobs "
            "WHERE id = $1",
            uuid.UUID(job_id),
        )
        return row if row is not None and row["status"] == "REJECTED" else None

    row = await eventually(rejected, what="the outbox to reject the row")
    assert row["reason"] == "InvalidSpec"
    assert "spec.model" in row["message"]
    assert row["event_seq"] == 1 and row["finished_at"] is not None
    assert get_resource(stack_env, api_settings.namespace, job_id) is None


class GatedKube:
    """The real client, with creates held until `gate` opens (a slow apiserver)."""

    def __init__(self, inner: Any, gate: asyncio.Event) -> None:
        self._inner = inner
        self._gate = gate
        self.waiting = 0

    async def create(self, job: Generation, owner_name: str | None = None) -> bool:
        self.waiting += 1
        await self._gate.wait()
        return bool(await self._inner.create(job, owner_name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_generate_holds_one_connection_while_the_apiserver_is_slow(
    api_settings: Settings,
) -> None:
    """Ten creates waiting on the apiserver hold ten pooled connections, not twenty (the
    whole pool): other requests are still served."""
    quiet = api_settings.model_copy(update={"outbox_enabled": False})
    async with in_process_api(quiet) as replica:
        account = await replica.register()
        ctx = replica.app.state.ctx
        gate = asyncio.Event()
        kube = GatedKube(ctx.kube, gate)
        ctx.kube = kube
        tasks = [
            asyncio.create_task(replica.generate(account, prompt=f"slow {n}")) for n in range(10)
        ]
        try:

            async def all_waiting() -> bool:
                return kube.waiting == 10

            await eventually(all_waiting, what="ten creates waiting on the apiserver")
            assert ctx.engine.pool.checkedout() <= 10
            async with asyncio.timeout(10):
                listing = await replica.http.get("/generations", headers=account.auth)
            assert listing.status_code == 200
        finally:
            gate.set()
            responses = await asyncio.gather(*tasks)
        assert [r.status_code for r in responses] == [202] * 10
        assert all(r.json()["status"] == "QUEUED" for r in responses)


# ---------------------------------------------------------------------------------------------
# Reading


async def test_list_is_mine_newest_first_and_paginated(api: ApiClient) -> None:
    account, other = await api.register(), await api.register()
    ids = []
    for n in range(5):
        response = await api.generate(account, prompt=f"scene {n}")
        ids.append(response.json()["id"])
    await api.generate(other, prompt="not yours")

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.http.get("/generations", params=params, headers=account.auth)).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))

    bad = await api.http.get("/generations", params={"cursor": "garbage!"}, headers=account.auth)
    assert bad.status_code == 422
    assert (
        await api.http.get("/generations", params={"limit": 0}, headers=account.auth)
    ).status_code == 422


async def test_other_users_generation_is_404_everywhere(api: ApiClient) -> None:
    owner, stranger = await api.register(), await api.register()
    job_id = (await api.generate(owner, prompt="private")).json()["id"]
    for method, path in (
        ("GET", f"/generations/{job_id}"),
        ("POST", f"/generations/{job_id}/cancel"),
        ("GET", f"/generations/{job_id}/events"),
        ("GET", f"/generations/{uuid.uuid4()}"),
    ):
        response = await api.http.request(method, path, headers=stranger.auth)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Generation not found"}
    assert (await api.http.get(f"/generations/{job_id}", headers=owner.auth)).status_code == 200


# ---------------------------------------------------------------------------------------------
# Cancelling


async def test_cancel_patches_the_resource(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings
) -> None:
    account = await api.register()
    job_id = (await api.generate(account)).json()["id"]
    response = await api.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    assert response.json()["status"] == "QUEUED"  # the operator moves it on
    resource = get_resource(stack_env, api_settings.namespace, job_id)
    assert resource is not None and resource["spec"]["cancel"] is True
    # Asking again is harmless.
    again = await api.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
    assert again.status_code == 202


async def job_row(db: asyncpg.Pool, job_id: str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM video_generation_jobs WHERE id = $1", uuid.UUID(job_id))
    assert row is not None
    return row


async def store_resource(api: ApiClient, db: asyncpg.Pool, job_id: str) -> None:
    """The job's VideoGeneration as a create whose answer was lost (timeout, 5xx) stored it:
    `cancel: false`, while the row still says resource_created=false."""
    row = await job_row(db, job_id)
    job = Generation.model_validate(dict(row))
    job.cancel_requested = False
    assert await api.app.state.ctx.kube.create(job) is True


async def job_with_a_lost_create(api: ApiClient, db: asyncpg.Pool) -> str:
    """A new user's queued row, not due for the outbox yet, whose resource a lost create
    stored."""
    account = await api.register()
    job_id = await insert_job(db, account.user_id, created_at=datetime(2100, 1, 1, tzinfo=UTC))
    await store_resource(api, db, job_id)
    return job_id


async def test_cancel_before_the_resource_exists_creates_it_canceled(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings, db: asyncpg.Pool
) -> None:
    """Nothing is finished locally: the resource is created with spec.cancel=true and the
    operator cancels it (without a Job), publishing the transition itself."""
    account = await api.register()
    # created_at in the future keeps the outbox away from it for this test.
    job_id = await insert_job(db, account.user_id, created_at=datetime(2100, 1, 1, tzinfo=UTC))
    before = (await job_row(db, job_id))["updated_at"]
    response = await api.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["cancel_requested"]) == ("QUEUED", True)
    assert body["finished_at"] is None
    resource = get_resource(stack_env, api_settings.namespace, job_id)
    assert resource is not None and resource["spec"]["cancel"] is True
    row = await job_row(db, job_id)
    assert (row["status"], row["event_seq"], row["resource_created"]) == ("QUEUED", 0, True)
    assert row["cancel_delivered_at"] is not None
    assert row["updated_at"] > before


@pytest.mark.parametrize(("status", "seq"), [("QUEUED", 0), ("RUNNING", 2)])
async def test_cancel_after_a_create_that_failed_but_was_stored_cancels_the_resource(
    api: ApiClient,
    stack_env: dict[str, str],
    api_settings: Settings,
    db: asyncpg.Pool,
    status: str,
    seq: int,
) -> None:
    """The billing race: POST /generate's create timed out but the apiserver stored it. A
    cancel must reach that resource, not finish the row locally while the operator runs it
    (and the operator may already have mirrored its transitions into the unflagged row)."""
    account = await api.register()
    job_id = await insert_job(
        db, account.user_id, status=status, event_seq=seq,
        created_at=datetime(2100, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    await store_resource(api, db, job_id)
    response = await api.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["cancel_requested"]) == (status, True)
    resource = get_resource(stack_env, api_settings.namespace, job_id)
    assert resource is not None and resource["spec"]["cancel"] is True
    row = await job_row(db, job_id)
    assert (row["status"], row["event_seq"], row["resource_created"]) == (status, seq, True)
    assert row["cancel_delivered_at"] is not None


async def test_outbox_flags_an_unflagged_row_the_operator_already_runs(
    api: ApiClient, api_settings: Settings, db: asyncpg.Pool
) -> None:
    job_id = await job_with_a_lost_create(api, db)
    await db.execute(
        "UPDATE video_generation_jobs SET status = 'RUNNING', event_seq = 2, "
        "created_at = now() - interval '1 minute' WHERE id = $1",
        uuid.UUID(job_id),
    )

    async def flagged() -> bool:
        return bool((await job_row(db, job_id))["resource_created"])

    await eventually(flagged, what="the outbox to flag the row")
    assert (await job_row(db, job_id))["status"] == "RUNNING"


async def test_outbox_cancels_a_stored_resource_of_a_canceled_unflagged_row(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings, db: asyncpg.Pool
) -> None:
    """The same race, with the cancel's own create lost too: the outbox finds the row
    (cancel_requested, resource_created=false), gets 409 and sets spec.cancel on it."""
    job_id = await job_with_a_lost_create(api, db)
    await db.execute(
        "UPDATE video_generation_jobs SET cancel_requested = true, "
        "created_at = now() - interval '1 minute', updated_at = now() WHERE id = $1",
        uuid.UUID(job_id),
    )

    async def canceled() -> bool:
        resource = get_resource(stack_env, api_settings.namespace, job_id)
        return resource is not None and resource["spec"]["cancel"] is True

    await eventually(canceled, what="the outbox to set spec.cancel")

    async def flagged() -> asyncpg.Record | None:
        row = await job_row(db, job_id)
        return row if row["cancel_delivered_at"] is not None else None

    row = await eventually(flagged, what="the row to record the delivered cancel")
    assert (row["status"], row["event_seq"], row["resource_created"]) == ("QUEUED", 0, True)


async def test_cancel_while_the_apiserver_is_down_is_delivered_by_the_outbox(
    api: ApiClient,
    stack_env: dict[str, str],
    api_settings: Settings,
    unreachable_kubeconfig: str,
) -> None:
    """The replica can reach neither to create nor to cancel: the job stays QUEUED with
    cancel_requested, and an outbox creates the resource already canceled."""
    broken = api_settings.model_copy(
        update={"kubeconfig": unreachable_kubeconfig, "outbox_enabled": False}
    )
    async with in_process_api(broken) as replica:
        account = await replica.register()
        job_id = (await replica.generate(account, prompt="never mind")).json()["id"]
        response = await replica.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["cancel_requested"]) == ("QUEUED", True)

    async def canceled() -> bool:
        resource = get_resource(stack_env, api_settings.namespace, job_id)
        return resource is not None and resource["spec"]["cancel"] is True

    await eventually(canceled, what="the healthy replica's outbox to create it canceled")


async def test_cancel_of_a_spec_the_apiserver_rejects_is_rejected(
    api: ApiClient, stack_env: dict[str, str], api_settings: Settings, db: asyncpg.Pool
) -> None:
    """The one case the api still finishes itself: the resource can never exist."""
    account = await api.register()
    job_id = await insert_job(
        db, account.user_id, model="Not A Valid Model", created_at=datetime(2100, 1, 1, tzinfo=UTC)
    )
    response = await api.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["reason"], body["cancel_requested"]) == (
        "REJECTED",
        "InvalidSpec",
        True,
    )
    assert (await job_row(db, job_id))["event_seq"] == 1
    assert get_resource(stack_env, api_settings.namespace, job_id) is None


async def test_outbox_treats_a_vanished_resource_as_a_delivered_cancel(
    api: ApiClient, db: asyncpg.Pool
) -> None:
    """A cancel whose resource is gone (404) is not re-sent on every pass forever."""
    account = await api.register()
    job_id = await insert_job(
        db, account.user_id, status="RUNNING", resource_created=True, cancel_requested=True,
        updated_at=datetime(2020, 1, 1, tzinfo=UTC),
    )  # fmt: skip

    async def settled() -> asyncpg.Record | None:
        row = await job_row(db, job_id)
        return row if row["cancel_delivered_at"] is not None else None

    row = await eventually(settled, what="the outbox to give up on the vanished resource")
    assert row["status"] == "RUNNING"  # the operator's to change, not the api's


async def test_cancel_is_not_resent_before_the_grace_period(
    api: ApiClient, api_settings: Settings, db: asyncpg.Pool
) -> None:
    """The cancel moves updated_at, which the outbox's re-send waits on."""
    account = await api.register()
    job_id = (await api.generate(account)).json()["id"]
    await db.execute(
        "UPDATE video_generation_jobs SET updated_at = now() - interval '2 hours' WHERE id = $1",
        uuid.UUID(job_id),
    )
    response = await api.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
    assert response.status_code == 202
    row = await job_row(db, job_id)
    assert row["updated_at"] > datetime.now(UTC) - timedelta(minutes=5)
    async with api.app.state.ctx.sessions() as session:
        pending = await generations.pending_cancel_ids(session, 3600, 1000)
    assert uuid.UUID(job_id) not in pending


async def test_the_operator_cancels_a_job_canceled_before_its_resource_existed(
    stack_env: dict[str, str], js: JetStreamContext
) -> None:
    """With the stack's own operator (its namespace and database): the resource created
    canceled never gets a Job, and the operator's Canceled transition, the first, reaches the
    row and the stream."""
    settings = make_settings(
        stack_env, stack_env["DATABASE_URL"], stack_env["GENVID_NAMESPACE"],
        GENVID_OUTBOX_ENABLED="false",
    )  # fmt: skip
    stack_db = await asyncpg.create_pool(stack_env["DATABASE_URL"], min_size=1, max_size=2)
    try:
        async with in_process_api(settings) as replica:
            account = await replica.register()
            # Out of every outbox's reach: only the cancel creates its resource.
            job_id = await insert_job(
                stack_db, account.user_id, created_at=datetime(2100, 1, 1, tzinfo=UTC)
            )
            response = await replica.http.post(
                f"/generations/{job_id}/cancel", headers=account.auth
            )
            assert response.status_code == 202, response.text

        async def finished() -> asyncpg.Record | None:
            row = await job_row(stack_db, job_id)
            return row if row["status"] != "QUEUED" else None

        row = await eventually(finished, seconds=30, what="the operator to cancel the job")
    finally:
        await stack_db.close()
    assert (row["status"], row["reason"], row["event_seq"]) == ("CANCELED", "CanceledByUser", 1)
    resource = get_resource(stack_env, stack_env["GENVID_NAMESPACE"], job_id)
    assert resource is not None and resource["status"]["phase"] == "CANCELED"
    jobs_made = kubectl(
        stack_env["KUBECONFIG"], "get", "jobs", "-n", stack_env["GENVID_NAMESPACE"],
        "-l", f"genvid.io/generation={job_id}", "-o", "name",
    ).stdout  # fmt: skip
    assert jobs_made.strip() == ""
    last = await js.get_last_msg(STREAM_NAME, job_subject(account.user_id, job_id))
    event = json.loads(last.data or b"")
    assert (event["status"], event["seq"]) == ("CANCELED", 1)


async def test_cancel_of_a_finished_job_is_409(api: ApiClient, db: asyncpg.Pool) -> None:
    account = await api.register()
    job_id = await insert_job(db, account.user_id, status="FAILED", resource_created=True)
    response = await api.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
    assert response.status_code == 409
    assert response.json() == {"detail": "Generation already finished (FAILED)"}


# ---------------------------------------------------------------------------------------------
# Signed URLs


def _verify_v4_signature(url: str, public_key: Any) -> None:
    """Check a V4 signed URL against the signer's public key, as Cloud Storage would."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    signature = bytes.fromhex(params.pop("X-Goog-Signature"))
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='')}"
        for k, v in sorted(params.items())
    )
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            params["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())


async def test_succeeded_job_has_fresh_signed_urls_that_fetch_the_preview(
    api: ApiClient, stack_env: dict[str, str], db: asyncpg.Pool
) -> None:
    """The URLs fetch the objects, and their V4 signatures verify with the signer's key.

    fake-gcs-server checks no signatures and serves unsigned requests too, so the bucket's
    privacy (enforced by Cloud Storage IAM in production) cannot be shown here; what can is
    that the URLs are correctly signed, which is what Cloud Storage checks.
    """
    account = await api.register()
    job_id = (await api.generate(account)).json()["id"]
    bucket = stack_env["GENVID_BUCKET"]
    video_object, poster_object = f"previews/{job_id}/preview.mp4", f"previews/{job_id}/poster.jpg"
    video, poster = os.urandom(64 * 1024), os.urandom(2048)
    client = storage.Client(
        project="genvid-local",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": stack_env["STORAGE_EMULATOR_HOST"]},
    )
    await asyncio.to_thread(
        client.bucket(bucket).blob(video_object).upload_from_string, video, "video/mp4"
    )
    await asyncio.to_thread(
        client.bucket(bucket).blob(poster_object).upload_from_string, poster, "image/jpeg"
    )
    # The operator's update, simulated.
    await db.execute(
        "UPDATE video_generation_jobs SET status = 'SUCCEEDED', bucket = $2, object_name = $3, "
        "poster_object = $4, size_bytes = $5, cost_usd = 0.4, event_seq = 4, "
        "finished_at = now(), updated_at = now() WHERE id = $1",
        uuid.UUID(job_id), bucket, video_object, poster_object, len(video),
    )  # fmt: skip

    body = (await api.http.get(f"/generations/{job_id}", headers=account.auth)).json()
    assert body["status"] == "SUCCEEDED"
    assert body["cost_usd"] == "0.400000"
    url = body["video_url"]
    assert url.startswith(f"{stack_env['STORAGE_EMULATOR_HOST']}/{bucket}/previews/")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert params["X-Goog-Expires"] == "900"
    signer = api.app.state.ctx.signer
    _verify_v4_signature(url, signer.public_key)
    _verify_v4_signature(body["poster_url"], signer.public_key)

    async with httpx.AsyncClient(trust_env=False) as http:
        fetched = await http.get(url)
        assert fetched.status_code == 200 and fetched.content == video
        fetched = await http.get(body["poster_url"])
        assert fetched.status_code == 200 and fetched.content == poster

    # Signed at response time, never stored: the next read signs anew.
    again = (await api.http.get(f"/generations/{job_id}", headers=account.auth)).json()
    listed = (await api.http.get("/generations", headers=account.auth)).json()["items"]
    assert listed[0]["video_url"] is not None
    stored = await db.fetchrow(
        "SELECT * FROM video_generation_jobs WHERE id = $1", uuid.UUID(job_id)
    )
    assert stored is not None
    assert all("X-Goog-Signature" not in str(value) for value in stored.values())
    assert again["urls_expire_at"] >= body["urls_expire_at"]
