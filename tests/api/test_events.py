"""Server-sent events from NATS JetStream, served by real uvicorn processes.

Two api processes run side by side for the whole module (nothing in-process is shared, so a
client may use either). The operator is simulated by publishing its messages to the stream.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from nats.js import JetStreamContext

from support.api import Account, ApiClient, api_env
from support.api_process import ApiProcess, start_api_process
from support.job_stream import consumer_count, publish_transition, stream_consumers
from support.jobs import insert_job
from support.polling import eventually
from support.sse import sse

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def servers(start_api: Callable[..., ApiProcess]) -> tuple[ApiProcess, ApiProcess]:
    # No outbox: every job here gets its resource from POST /generate itself, and the
    # processes' only database work is their requests' (see the idle-transaction test).
    return (
        start_api("api-a", GENVID_OUTBOX_ENABLED="false"),
        start_api("api-b", GENVID_OUTBOX_ENABLED="false"),
    )


@pytest.fixture
async def clients(
    servers: tuple[ApiProcess, ApiProcess],
) -> AsyncIterator[tuple[ApiClient, ApiClient]]:
    a, b = servers
    async with (
        httpx.AsyncClient(base_url=a.url, trust_env=False, timeout=30) as http_a,
        httpx.AsyncClient(base_url=b.url, trust_env=False, timeout=30) as http_b,
    ):
        yield ApiClient(http_a), ApiClient(http_b)


async def new_job(client: ApiClient, account: Account) -> str:
    response = await client.generate(account)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def user_with_job(client: ApiClient) -> tuple[Account, str]:
    """A new user and a new job of theirs."""
    account = await client.register()
    return account, await new_job(client, account)


# ---------------------------------------------------------------------------------------------
# Per-job streams


async def test_late_client_sees_every_transition_in_order_then_the_stream_ends(
    clients: tuple[ApiClient, ApiClient], js: JetStreamContext
) -> None:
    a, _ = clients
    account, job_id = await user_with_job(a)
    seqs = [
        await publish_transition(js, account.user_id, job_id, "QUEUED", 1),
        await publish_transition(js, account.user_id, job_id, "RUNNING", 2, attempts=1),
        await publish_transition(
            js, account.user_id, job_id, "SUCCEEDED", 3, attempts=1, cost_usd="0.400000",
            bucket="genvid-previews", object_name=f"previews/{job_id}/p.mp4",
            poster_object=f"previews/{job_id}/p.jpg",
        ),
    ]  # fmt: skip
    async with sse(a.http, f"/generations/{job_id}/events", account.auth) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        events = await stream.events(3)
        await stream.wait_end()
    assert [e.id for e in events] == [str(s) for s in seqs]
    assert [e.data["status"] for e in events] == ["QUEUED", "RUNNING", "SUCCEEDED"]
    assert [e.data["seq"] for e in events] == [1, 2, 3]
    assert {e.data["id"] for e in events} == {job_id}
    done = events[-1].data
    assert done["cost_usd"] == "0.400000"
    assert done["video_url"].split("?")[0].endswith(f"/genvid-previews/previews/{job_id}/p.mp4")
    assert "X-Goog-Signature=" in done["poster_url"]
    assert "object_name" not in done and "bucket" not in done


async def test_live_client_gets_events_as_they_happen(
    clients: tuple[ApiClient, ApiClient], js: JetStreamContext
) -> None:
    a, _ = clients
    account, job_id = await user_with_job(a)
    async with sse(a.http, f"/generations/{job_id}/events", account.auth) as stream:
        await stream.wait_comments(1)  # connected, nothing to say yet
        await publish_transition(js, account.user_id, job_id, "QUEUED", 1)
        first = await stream.next_event()
        assert first is not None and first.data["status"] == "QUEUED"
        await publish_transition(
            js, account.user_id, job_id, "FAILED", 2, reason="SafetyFiltered",
            message="The prompt was blocked by the safety filter.",
        )  # fmt: skip
        last = await stream.next_event()
        assert last is not None
        assert (last.data["status"], last.data["reason"]) == ("FAILED", "SafetyFiltered")
        await stream.wait_end()


async def test_last_event_id_resumes_without_missing_or_repeating(
    clients: tuple[ApiClient, ApiClient], js: JetStreamContext
) -> None:
    a, b = clients
    account, job_id = await user_with_job(a)
    await publish_transition(js, account.user_id, job_id, "QUEUED", 1)
    await publish_transition(js, account.user_id, job_id, "RUNNING", 2, attempts=1)
    async with sse(a.http, f"/generations/{job_id}/events", account.auth) as stream:
        seen = await stream.events(2)
    # While the client is away (other jobs' events interleave in the stream) ...
    other = await new_job(a, account)
    await publish_transition(js, account.user_id, other, "QUEUED", 1)
    await publish_transition(js, account.user_id, job_id, "RUNNING", 3, attempts=2)
    await publish_transition(js, account.user_id, job_id, "SUCCEEDED", 4, attempts=2)
    # ... and it comes back, to the other process, with the header ...
    headers = {**account.auth, "Last-Event-ID": seen[-1].id or ""}
    async with sse(b.http, f"/generations/{job_id}/events", headers) as stream:
        rest = await stream.events(10)
    assert [e.data["seq"] for e in seen + rest] == [1, 2, 3, 4]
    # ... or with the query parameter, from any point.
    url = f"/generations/{job_id}/events?last_event_id={seen[0].id}"
    async with sse(a.http, url, account.auth) as stream:
        tail = await stream.events(10)
    assert [e.data["seq"] for e in tail] == [2, 3, 4]

    # Resuming at the terminal event: nothing left, and 204 tells EventSource to stop.
    done = {**account.auth, "Last-Event-ID": rest[-1].id or ""}
    assert (await a.http.get(f"/generations/{job_id}/events", headers=done)).status_code == 204
    bad = {**account.auth, "Last-Event-ID": "abc"}
    assert (await a.http.get(f"/generations/{job_id}/events", headers=bad)).status_code == 422


async def test_finished_job_without_stream_events_gets_a_snapshot(
    clients: tuple[ApiClient, ApiClient], db: asyncpg.Pool
) -> None:
    """Events expire after seven days; the database still knows how the job ended."""
    a, _ = clients
    account = await a.register()
    job_id = await insert_job(
        db, account.user_id, prompt="old", status="FAILED", reason="ProviderError",
        resource_created=True, event_seq=3, finished_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    async with sse(a.http, f"/generations/{job_id}/events", account.auth) as stream:
        events = await stream.events(5)
    assert len(events) == 1
    assert events[0].id == "0"
    assert (events[0].data["status"], events[0].data["reason"]) == ("FAILED", "ProviderError")
    again = {**account.auth, "Last-Event-ID": "0"}
    assert (await a.http.get(f"/generations/{job_id}/events", headers=again)).status_code == 204


async def test_cancel_before_creation_publishes_nothing_itself(
    clients: tuple[ApiClient, ApiClient], db: asyncpg.Pool
) -> None:
    """The api creates the resource with spec.cancel=true and leaves the transition to the
    operator: publishing one itself (seq 1) would collide with the operator's own first one."""
    a, _ = clients
    account = await a.register()
    job_id = await insert_job(
        db, account.user_id, prompt="later", created_at=datetime(2100, 1, 1, tzinfo=UTC)
    )
    async with sse(a.http, f"/generations/{job_id}/events", account.auth) as stream:
        await stream.wait_comments(1)
        response = await a.http.post(f"/generations/{job_id}/cancel", headers=account.auth)
        assert response.status_code == 202
        assert (response.json()["status"], response.json()["cancel_requested"]) == (
            "QUEUED",
            True,
        )
        await stream.wait_comments(stream.comments + 3)  # no operator here: nothing comes
        assert stream._events == []
    row = await db.fetchrow(
        "SELECT status, event_seq, resource_created FROM video_generation_jobs WHERE id = $1",
        uuid.UUID(job_id),
    )
    assert row is not None and tuple(row) == ("QUEUED", 0, True)


# ---------------------------------------------------------------------------------------------
# All of a user's jobs


async def test_user_stream_has_only_my_new_events_and_resumes(
    clients: tuple[ApiClient, ApiClient], js: JetStreamContext
) -> None:
    a, b = clients
    me, someone = await a.register(), await a.register()
    first, second = await new_job(a, me), await new_job(a, me)
    theirs = await new_job(a, someone)
    await publish_transition(js, me.user_id, first, "QUEUED", 1)  # before connecting: old news
    async with sse(b.http, "/events", me.auth) as stream:
        assert stream.response.status_code == 200
        await publish_transition(js, me.user_id, second, "QUEUED", 1)
        await publish_transition(js, someone.user_id, theirs, "QUEUED", 1)
        await publish_transition(js, me.user_id, first, "RUNNING", 2)
        events = await stream.events(2)
        await stream.wait_comments(stream.comments + 2)  # heartbeats keep it alive
        assert stream._events == []  # nothing else (their event) arrived
    assert [(e.data["id"], e.data["status"]) for e in events] == [
        (second, "QUEUED"),
        (first, "RUNNING"),
    ]
    await publish_transition(js, me.user_id, second, "RUNNING", 2)
    headers = {**me.auth, "Last-Event-ID": events[0].id or ""}
    async with sse(a.http, "/events", headers) as stream:
        resumed = await stream.events(2)
    assert [(e.data["id"], e.data["status"]) for e in resumed] == [
        (first, "RUNNING"),
        (second, "RUNNING"),
    ]


async def test_events_need_a_token(clients: tuple[ApiClient, ApiClient]) -> None:
    a, _ = clients
    response = await a.http.get("/events")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


# ---------------------------------------------------------------------------------------------
# Resources on the NATS server


async def test_streams_open_no_consumer_of_their_own(
    clients: tuple[ApiClient, ApiClient], js: JetStreamContext
) -> None:
    """Rounds of clients connect to both processes, per job and per user, and leave: the
    server's consumers stay those of the processes' hubs throughout."""
    a, b = clients
    account, job_id = await user_with_job(a)
    baseline = await consumer_count(js, account.user_id)
    before = await stream_consumers(js)
    per_round, rounds = 10, 3
    urls = [f"/generations/{job_id}/events", "/events"]

    async def hold(
        client: ApiClient, url: str, opened: asyncio.Queue[None], release: asyncio.Event
    ) -> None:
        async with sse(client.http, url, account.auth) as stream:
            await stream.wait_comments(1)
            await opened.put(None)
            await release.wait()

    for _ in range(rounds):
        release, opened = asyncio.Event(), asyncio.Queue[None]()
        holders = [
            asyncio.create_task(hold((a, b)[i % 2], urls[(i // 2) % 2], opened, release))
            for i in range(per_round)
        ]
        try:
            for _ in range(per_round):
                async with asyncio.timeout(15):
                    await opened.get()
            assert await consumer_count(js, account.user_id) == baseline
            assert await stream_consumers(js) <= before
        finally:
            release.set()
            await asyncio.gather(*holders)
    assert await stream_consumers(js) <= before


async def test_open_streams_hold_no_database_transaction(
    clients: tuple[ApiClient, ApiClient], db: asyncpg.Pool
) -> None:
    a, _ = clients
    account, job_id = await user_with_job(a)
    async with (
        sse(a.http, "/events", account.auth) as first,
        sse(a.http, f"/generations/{job_id}/events", account.auth) as second,
    ):
        await first.wait_comments(1)
        await second.wait_comments(1)
        # Open for longer than the 2 s below (heartbeats every 0.5 s): a transaction begun by
        # either request and held by its stream would be older than that by now.
        await first.wait_comments(first.comments + 6)
        held = await db.fetch(
            "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'genvid-api' "
            "AND xact_start < now() - interval '2 seconds'"
        )
    assert held == [], held


async def test_two_processes_serve_the_same_client_alike(
    clients: tuple[ApiClient, ApiClient], js: JetStreamContext
) -> None:
    a, b = clients
    account = await a.register()  # registered and logged in through A
    job_id = await new_job(b, account)  # created through B
    assert (await a.http.get(f"/generations/{job_id}", headers=account.auth)).status_code == 200
    await publish_transition(js, account.user_id, job_id, "QUEUED", 1)
    await publish_transition(js, account.user_id, job_id, "CANCELED", 2, reason="CanceledByUser")
    seen = []
    for client in (a, b):
        async with sse(client.http, f"/generations/{job_id}/events", account.auth) as stream:
            seen.append([(e.id, e.data) for e in await stream.events(5)])
    assert seen[0] == seen[1]
    assert [data["status"] for _, data in seen[0]] == ["QUEUED", "CANCELED"]


# ---------------------------------------------------------------------------------------------
# Shutdown


async def test_shutdown_ends_open_streams_and_deletes_the_hubs_consumer(
    stack_env: dict[str, str], api_migrated: str, api_namespace: str, tmp_path: Path,
    js: JetStreamContext,
) -> None:  # fmt: skip
    env = api_env(stack_env, api_migrated, api_namespace)
    before = await stream_consumers(js)
    server = await asyncio.to_thread(start_api_process, env, tmp_path / "api.log")
    try:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as http:
            client = ApiClient(http)
            account = await client.register()
            job_id = await new_job(client, account)
            async with (
                sse(http, "/events", account.auth) as user_stream,
                sse(http, f"/generations/{job_id}/events", account.auth) as job_stream,
            ):
                await user_stream.wait_comments(1)
                await job_stream.wait_comments(1)
                # One consumer for the process (its hub), none of the streams' own.
                hubs: set[str] = set()

                async def hub_subscribed() -> bool:
                    hubs.update(await stream_consumers(js) - before)
                    return bool(hubs)

                await eventually(hub_subscribed, what="the process's hub")
                assert len(hubs) == 1
                assert await consumer_count(js, account.user_id) == 0
                server.process.send_signal(signal.SIGTERM)
                await user_stream.wait_end(seconds=15)
                await job_stream.wait_end(seconds=15)
        returncode = await asyncio.to_thread(server.process.wait, 20)
        # uvicorn ends by re-raising the signal it handled: -SIGTERM after a clean shutdown.
        assert returncode in (0, -signal.SIGTERM), server.log_tail()
        log = server.log_tail()
        assert "Application shutdown complete" in log
        assert "ERROR" not in log and "Traceback" not in log, log

        async def hub_gone() -> bool:
            return (await stream_consumers(js)).isdisjoint(hubs)

        await eventually(hub_gone, seconds=10, what="the hub's consumer to be deleted")
    finally:
        server.stop()
