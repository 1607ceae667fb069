"""Webhooks: signed deliveries of a user's generation transitions to their endpoints.

Two real api processes share one database and one durable consumer (a deployment of two
replicas), the operator is simulated by publishing its messages to the stream, and a real HTTP
receiver on loopback records what arrives. Signatures are checked with the independent
`standardwebhooks` package. Retry delays are fractions of a second so that retries and failures
happen within a test.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import nats.js.errors
import pytest
from nats.js import JetStreamContext

from genvid_api import webhooks
from genvid_api.errors import Invalid
from genvid_api.queries import webhooks as queries
from genvid_api.webhook_delivery import BlockedAddress, _transport
from genvid_contracts.events import STREAM_NAME
from support.api import Account, ApiClient, api_http_client
from support.api_process import ApiProcess
from support.job_stream import publish_transition
from support.jobs import insert_job
from support.polling import eventually
from support.webhook_receiver import Received, WebhookReceiver, webhook_receiver

# One attempt more than delays: five attempts, the last about 2.5 s after the first.
RETRY_DELAYS = "0.2,0.3,0.5,1"
ATTEMPTS = 5


# ---------------------------------------------------------------------------------------------
# Rules (no stack)


def test_signatures_are_what_standard_webhooks_verifies() -> None:
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    message_id, kind, body = webhooks.message(
        {"id": "g1", "status": "SUCCEEDED", "seq": 3, "object_name": "previews/g1/v.mp4"},
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert (message_id, kind) == ("g1:3", "generation.succeeded")
    timestamp = int(datetime.now(UTC).timestamp())
    request = Received("/", webhooks.headers(secret, message_id, timestamp, body), body)
    payload = request.verified(secret)
    assert payload["type"] == "generation.succeeded"
    assert payload["data"] == {
        "id": "g1", "status": "SUCCEEDED", "seq": 3, "reason": None, "message": None,
        "attempts": None, "updated_at": None, "cost_usd": None, "queue_position": None,
        "deadline_at": None,
    }  # fmt: skip
    other = Received(
        "/", webhooks.headers(webhooks.new_secret(), message_id, timestamp, body), body
    )
    with pytest.raises(Exception, match="signature"):
        other.verified(secret)


def test_a_rotations_grace_period_signs_with_both_secrets() -> None:
    new, old, other = webhooks.new_secret(), webhooks.new_secret(), webhooks.new_secret()
    message_id, _, body = webhooks.message(
        {"id": "g1", "status": "QUEUED", "seq": 1}, datetime(2026, 12, 1, tzinfo=UTC)
    )
    timestamp = int(datetime.now(UTC).timestamp())
    both = Received("/", webhooks.headers(new, message_id, timestamp, body, old), body)
    assert both.headers["webhook-signature"].startswith("v1,")
    assert len(both.headers["webhook-signature"].split(" ")) == 2
    assert both.verified(new) == both.verified(old)
    with pytest.raises(Exception, match="signature"):
        both.verified(other)
    alone = Received("/", webhooks.headers(new, message_id, timestamp, body), body)
    assert len(alone.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(Exception, match="signature"):
        alone.verified(old)


@pytest.mark.parametrize(
    ("url", "insecure", "private", "error"),
    [
        ("https://hooks.example.com/genvid", False, False, None),
        ("http://hooks.example.com/genvid", False, False, "must use https"),
        ("http://hooks.example.com/genvid", True, False, None),
        ("ftp://hooks.example.com/", True, True, "absolute http(s)"),
        ("/relative/path", True, True, "absolute http(s)"),
        ("https://user:pw@hooks.example.com/", False, False, "credentials"),
        ("https://:8443/", False, False, "must name a host"),
        ("https://127.0.0.1/hook", False, False, "not a public address"),
        ("https://localhost:8443/hook", False, False, "not a public address"),
        ("https://[::1]/hook", False, False, "not a public address"),
        ("https://169.254.169.254/latest", False, False, "not a public address"),
        ("https://10.1.2.3/hook", False, False, "not a public address"),
        ("https://[::ffff:127.0.0.1]/hook", False, False, "not a public address"),
        ("https://127.0.0.1/hook", False, True, None),
        ("https://hooks.example.com:99999/", False, False, "not a valid URL"),
        ("https://hooks.example.com/a\x00b", False, False, "control characters"),
    ],
)
def test_url_rules(url: str, insecure: bool, private: bool, error: str | None) -> None:
    if error is None:
        assert webhooks.check_url(url, allow_insecure=insecure, allow_private=private) == url
        return
    with pytest.raises(Invalid) as raised:
        webhooks.check_url(url, allow_insecure=insecure, allow_private=private)
    assert error in str(raised.value.detail)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("64:ff9b::5db8:d70e", True),  # NAT64 of a public IPv4 address
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata server
        ("64:ff9b:1::a00:1", False),  # local-use NAT64: its IPv4 cannot be told
        ("2002:a9fe:a9fe::1", False),  # 6to4 of the metadata server
        ("2002:7f00:1::1", False),  # 6to4 of loopback
        ("::a9fe:a9fe", False),  # IPv4-compatible form of the metadata server
        ("::ffff:10.0.0.1", False),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo, client 10.0.0.1
        ("::", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),
    ],
)
def test_public_addresses_judge_the_ipv4_address_an_ipv6_one_carries(
    address: str, public: bool
) -> None:
    assert webhooks.is_public(ipaddress.ip_address(address)) is public


def test_retry_schedule_has_jitter_and_an_end() -> None:
    delays = (5.0, 30.0, 120.0)
    assert webhooks.retry_delay(1, delays, lambda low, high: low) == pytest.approx(4.0)
    assert webhooks.retry_delay(3, delays, lambda low, high: high) == pytest.approx(144.0)
    assert webhooks.retry_delay(4, delays) is None


async def test_delivery_refuses_private_addresses_unless_allowed() -> None:
    """The connection itself is guarded (a name resolving to loopback too), not only the URL."""
    async with webhook_receiver() as receiver:
        for host in ("127.0.0.1", "localhost"):
            url = receiver.url.replace("127.0.0.1", host)
            async with httpx.AsyncClient(transport=_transport(False, 1)) as strict:
                with pytest.raises(BlockedAddress, match="not a public address"):
                    await strict.post(url, content=b"{}")
        async with httpx.AsyncClient(transport=_transport(True, 1)) as allowed:
            assert (await allowed.post(receiver.url, content=b"{}")).status_code == 204
    assert len(receiver.received) == 1


# ---------------------------------------------------------------------------------------------
# Endpoints (the in-process api: strict settings)


async def test_strict_settings_refuse_local_and_insecure_urls(api: ApiClient) -> None:
    account = await api.register("hook")
    for url, words in (
        ("http://127.0.0.1:9/hook", "must use https"),
        ("https://127.0.0.1:9/hook", "not a public address"),
        ("https://user:secret@hooks.example.com/", "credentials"),
    ):
        refused = await api.http.post("/webhooks", json={"url": url}, headers=account.auth)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["body", "url"]
        assert words in refused.json()["detail"][0]["msg"]
    listed = await api.http.get("/webhooks", headers=account.auth)
    assert listed.json() == {"items": [], "next_cursor": None}


async def test_endpoints_are_their_owners_and_their_secret_is_shown_once(
    api: ApiClient,
) -> None:
    owner, other = await api.register("hook"), await api.register("hook")
    created = await api.http.post(
        "/webhooks",
        json={"url": "https://hooks.example.com/a", "description": "CI"},
        headers=owner.auth,
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    secret = endpoint["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
    assert created.headers["location"] == f"/webhooks/{endpoint['id']}"
    assert {"id", "url", "created_at"} <= endpoint.keys()

    listed = await api.http.get("/webhooks", headers=owner.auth)
    assert [item["id"] for item in listed.json()["items"]] == [endpoint["id"]]
    assert "secret" not in listed.json()["items"][0] and secret not in listed.text
    deliveries = await api.http.get(f"/webhooks/{endpoint['id']}/deliveries", headers=owner.auth)
    assert deliveries.status_code == 200 and deliveries.json()["items"] == []
    assert secret not in deliveries.text

    # Another user neither sees nor deletes it.
    assert (await api.http.get("/webhooks", headers=other.auth)).json()["items"] == []
    for method, path in (
        ("DELETE", f"/webhooks/{endpoint['id']}"),
        ("GET", f"/webhooks/{endpoint['id']}/deliveries"),
        ("DELETE", f"/webhooks/{uuid.uuid4()}"),
    ):
        answer = await api.http.request(method, path, headers=other.auth)
        assert answer.status_code == 404, (method, path, answer.text)
    assert len((await api.http.get("/webhooks", headers=owner.auth)).json()["items"]) == 1

    deleted = await api.http.delete(f"/webhooks/{endpoint['id']}", headers=owner.auth)
    assert deleted.status_code == 204
    assert (await api.http.get("/webhooks", headers=owner.auth)).json()["items"] == []


async def test_a_rotated_secret_is_shown_once_and_only_to_the_owner(
    api: ApiClient, db: asyncpg.Pool
) -> None:
    owner, other = await api.register("hook"), await api.register("hook")
    created = await api.http.post(
        "/webhooks", json={"url": "https://hooks.example.com/r"}, headers=owner.auth
    )
    endpoint = created.json()
    assert endpoint["secret_rotated_at"] is None and endpoint["previous_secret_expires_at"] is None
    path = f"/webhooks/{endpoint['id']}/rotate-secret"
    for somebody, where in ((other, path), (owner, f"/webhooks/{uuid.uuid4()}/rotate-secret")):
        refused = await api.http.post(where, headers=somebody.auth)
        assert refused.status_code == 404, refused.text
    row = "SELECT secret, previous_secret FROM webhook_endpoints WHERE id = $1"
    assert tuple(await db.fetchrow(row, uuid.UUID(endpoint["id"]))) == (endpoint["secret"], None)

    rotated = await api.http.post(path, headers=owner.auth)
    assert rotated.status_code == 200, rotated.text
    answer = rotated.json()
    assert answer["id"] == endpoint["id"] and answer["url"] == endpoint["url"]
    assert answer["secret"].startswith("whsec_") and answer["secret"] != endpoint["secret"]
    rotated_at = datetime.fromisoformat(answer["secret_rotated_at"])
    expires_at = datetime.fromisoformat(answer["previous_secret_expires_at"])
    assert (expires_at - rotated_at).total_seconds() == 86_400  # the default grace period
    assert tuple(await db.fetchrow(row, uuid.UUID(endpoint["id"]))) == (
        answer["secret"],
        endpoint["secret"],
    )

    listed = await api.http.get("/webhooks", headers=owner.auth)
    [item] = listed.json()["items"]
    assert item["secret_rotated_at"] == answer["secret_rotated_at"]
    assert item["previous_secret_expires_at"] == answer["previous_secret_expires_at"]
    assert "secret" not in item and "previous_secret" not in item
    for secret in (endpoint["secret"], answer["secret"]):
        assert secret not in listed.text
        assert secret.removeprefix("whsec_") not in listed.text


async def test_endpoints_per_user_are_capped(api: ApiClient) -> None:
    account = await api.register("hook")
    for i in range(5):
        answer = await api.http.post(
            "/webhooks", json={"url": f"https://hooks.example.com/{i}"}, headers=account.auth
        )
        assert answer.status_code == 201, answer.text
    over = await api.http.post(
        "/webhooks", json={"url": "https://hooks.example.com/6"}, headers=account.auth
    )
    assert over.status_code == 409
    assert "At most 5 webhook endpoints" in over.json()["detail"]
    page = await api.http.get("/webhooks?limit=3", headers=account.auth)
    rest = await api.http.get(
        f"/webhooks?cursor={page.json()['next_cursor']}", headers=account.auth
    )
    urls = [item["url"] for item in page.json()["items"] + rest.json()["items"]]
    assert urls == [f"https://hooks.example.com/{i}" for i in range(5)]


# ---------------------------------------------------------------------------------------------
# Deliveries (two api processes, one receiver)


@dataclass
class Deployment:
    """Api processes of one database and one durable consumer, restartable."""

    start: Callable[[str], ApiProcess]
    processes: list[ApiProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.processes[0].url

    def logs(self) -> str:
        return "".join(process.log.read_text(errors="replace") for process in self.processes)


@pytest.fixture(scope="module")
async def deployment(
    start_api: Callable[..., ApiProcess], js: JetStreamContext
) -> AsyncIterator[Deployment]:
    consumer = f"webhooks-test-{uuid.uuid4().hex[:8]}"

    def start(name: str) -> ApiProcess:
        return start_api(
            name,
            GENVID_WEBHOOKS_ENABLED="true",
            GENVID_WEBHOOK_CONSUMER=consumer,
            GENVID_WEBHOOK_ALLOW_INSECURE="true",
            GENVID_WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
            GENVID_WEBHOOK_RETRY_DELAYS_SECONDS=RETRY_DELAYS,
            GENVID_WEBHOOK_TIMEOUT_SECONDS="5",
            GENVID_WEBHOOK_POLL_SECONDS="0.1",
            GENVID_OUTBOX_ENABLED="false",
        )

    async def consumer_exists() -> bool:
        try:
            await js.consumer_info(STREAM_NAME, consumer)
            return True
        except nats.js.errors.NotFoundError:
            return False

    deployment = Deployment(start, [start("hooks-a"), start("hooks-b")])
    # Transitions are read from the consumer's creation on: publish only once it exists.
    await eventually(consumer_exists, what="the webhooks' durable consumer")
    yield deployment


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
async def client(deployment: Deployment) -> AsyncIterator[ApiClient]:
    async with api_http_client(deployment.url) as http:
        yield ApiClient(http)


async def _endpoint(client: ApiClient, account: Account, url: str) -> dict[str, Any]:
    created = await client.http.post("/webhooks", json={"url": url}, headers=account.auth)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def _deliveries(client: ApiClient, account: Account, endpoint: dict[str, Any]) -> list[Any]:
    answer = await client.http.get(
        f"/webhooks/{endpoint['id']}/deliveries?limit=100", headers=account.auth
    )
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


def _settled(items: list[Any], count: int) -> bool:
    return len(items) == count and all(item["status"] != "pending" for item in items)


async def test_an_endpoint_gets_each_of_its_owners_transitions_once_in_order_signed(
    client: ApiClient,
    deployment: Deployment,
    receiver: WebhookReceiver,
    js: JetStreamContext,
    db: asyncpg.Pool,
) -> None:
    owner, other = await client.register("hook"), await client.register("hook")
    mine = await _endpoint(client, owner, f"{receiver.url}/mine")
    theirs = await _endpoint(client, other, f"{receiver.url}/theirs")
    generations = [await insert_job(db, owner.user_id) for _ in range(4)]
    foreign = await insert_job(db, other.user_id)
    steps = [(1, "QUEUED"), (2, "RUNNING"), (3, "SUCCEEDED")]
    for seq, status in steps:
        for generation in generations:
            extra = {"object_name": f"previews/{generation}/v.mp4"} if seq == 3 else {}
            await publish_transition(js, owner.user_id, generation, status, seq, **extra)
        await publish_transition(js, other.user_id, foreign, status, seq)
    # A message on the owner's subject claiming the other user's generation, and a repeat.
    await publish_transition(js, owner.user_id, generations[0], "FAILED", 9, id=foreign)
    await publish_transition(js, owner.user_id, generations[0], "QUEUED", 1)

    wanted = len(generations) * len(steps)
    await eventually(
        lambda: len(receiver.at("/mine")) >= wanted and len(receiver.at("/theirs")) >= 3,
        what="every transition at the receiver",
        seconds=30,
    )
    mine_deliveries = await eventually(
        lambda: _settled_items(client, owner, mine, wanted), what="deliveries recorded"
    )
    assert {item["status"] for item in mine_deliveries} == {"delivered"}

    received = receiver.at("/mine")
    assert len(received) == wanted  # none twice, though two processes deliver
    assert Counter(request.message_id for request in received).most_common(1)[0][1] == 1
    seen: dict[str, list[int]] = {}
    for request in received:
        payload: Any = request.verified(mine["secret"])
        data = payload["data"]
        assert data["id"] in generations
        assert payload["type"] == f"generation.{data['status'].lower()}"
        assert request.message_id == f"{data['id']}:{data['seq']}"
        assert "video_url" not in data and "object_name" not in data
        seen.setdefault(data["id"], []).append(data["seq"])
    assert seen == {generation: [1, 2, 3] for generation in generations}
    # The other user's endpoint got their own generation's transitions only.
    theirs_seen: list[Any] = [
        request.verified(theirs["secret"]) for request in receiver.at("/theirs")
    ]
    assert [(p["data"]["id"], p["data"]["seq"]) for p in theirs_seen] == [
        (foreign, 1),
        (foreign, 2),
        (foreign, 3),
    ]
    # Secrets are never logged.
    logs = deployment.logs()
    assert mine["secret"] not in logs and theirs["secret"] not in logs
    assert mine["secret"].removeprefix("whsec_") not in logs


async def _settled_items(
    client: ApiClient, account: Account, endpoint: dict[str, Any], count: int
) -> list[Any] | None:
    items = await _deliveries(client, account, endpoint)
    return items if _settled(items, count) else None


async def test_failed_attempts_are_retried_with_the_same_id_until_the_last(
    client: ApiClient, receiver: WebhookReceiver, js: JetStreamContext, db: asyncpg.Pool
) -> None:
    account = await client.register("hook")
    flaky = await _endpoint(client, account, f"{receiver.url}/flaky")
    broken = await _endpoint(client, account, f"{receiver.url}/broken")
    gone = await _endpoint(client, account, f"{receiver.url}/gone")
    statuses = {"/flaky": iter([500, 503]), "/gone": iter([410])}
    receiver.answer = lambda request: (
        500 if request.path == "/broken" else next(statuses[request.path], 204)
    )
    generation = await insert_job(db, account.user_id)
    await publish_transition(js, account.user_id, generation, "QUEUED", 1)

    flaky_items = await eventually(
        lambda: _settled_items(client, account, flaky, 1), what="the flaky endpoint's delivery"
    )
    assert flaky_items[0]["status"] == "delivered" and flaky_items[0]["attempts"] == 3
    attempts = receiver.at("/flaky")
    assert len(attempts) == 3
    assert {request.message_id for request in attempts} == {f"{generation}:1"}
    assert len({request.body for request in attempts}) == 1
    for request in attempts:
        request.verified(flaky["secret"])

    broken_items = await eventually(
        lambda: _settled_items(client, account, broken, 1),
        what="the broken endpoint's delivery to fail",
        seconds=30,
    )
    [failed] = broken_items
    assert failed["status"] == "failed" and failed["attempts"] == ATTEMPTS
    assert failed["last_status_code"] == 500 and failed["next_attempt_at"] is None
    assert len(receiver.at("/broken")) == ATTEMPTS

    # 410 Gone disables its endpoint.
    gone_items = await eventually(
        lambda: _settled_items(client, account, gone, 1), what="the 410 delivery"
    )
    assert gone_items[0]["status"] == "failed" and gone_items[0]["last_status_code"] == 410
    listed = (await client.http.get("/webhooks", headers=account.auth)).json()["items"]
    disabled = {item["id"]: item["disabled_at"] for item in listed}
    assert disabled[gone["id"]] is not None and disabled[flaky["id"]] is None
    await publish_transition(js, account.user_id, generation, "RUNNING", 2)
    await eventually(lambda: _settled_items(client, account, flaky, 2), what="the next transition")
    assert len(receiver.at("/gone")) == 1


async def test_a_deleted_endpoint_gets_nothing_more(
    client: ApiClient, receiver: WebhookReceiver, js: JetStreamContext, db: asyncpg.Pool
) -> None:
    account = await client.register("hook")
    kept = await _endpoint(client, account, f"{receiver.url}/kept")
    dropped = await _endpoint(client, account, f"{receiver.url}/dropped")
    receiver.answer = lambda request: 503 if request.path == "/dropped" else 204
    generation = await insert_job(db, account.user_id)
    await publish_transition(js, account.user_id, generation, "QUEUED", 1)
    await eventually(lambda: receiver.at("/dropped") or None, what="a first (failed) attempt")

    deleted = await client.http.delete(f"/webhooks/{dropped['id']}", headers=account.auth)
    assert deleted.status_code == 204
    left = await db.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1", uuid.UUID(dropped["id"])
    )
    assert left == 0  # its pending retries went with it
    attempted = len(receiver.at("/dropped"))
    receiver.answer = lambda request: 204
    for seq, status in ((2, "RUNNING"), (3, "SUCCEEDED")):
        await publish_transition(js, account.user_id, generation, status, seq)
    await eventually(lambda: len(receiver.at("/kept")) == 3, what="the kept endpoint's three")
    await eventually(
        lambda: _settled_items(client, account, kept, 3), what="the kept endpoint's records"
    )
    # At most the attempt that was in flight when it was deleted, and no later message.
    assert len(receiver.at("/dropped")) <= attempted + 1
    assert {request.message_id for request in receiver.at("/dropped")} == {f"{generation}:1"}


async def _delivered_at(
    client: ApiClient,
    account: Account,
    endpoint: dict[str, Any],
    receiver: WebhookReceiver,
    path: str,
    seq: int,
) -> Received:
    """The one request of the endpoint's `seq`th message, once its delivery is recorded."""
    await eventually(
        lambda: _settled_items(client, account, endpoint, seq), what=f"message {seq} delivered"
    )
    [request] = [r for r in receiver.at(path) if r.message_id.endswith(f":{seq}")]
    return request


def _signatures(request: Received) -> int:
    return len(request.headers["webhook-signature"].split(" "))


async def test_after_a_rotation_both_secrets_sign_until_the_grace_period_ends(
    api: ApiClient,
    client: ApiClient,
    receiver: WebhookReceiver,
    js: JetStreamContext,
    db: asyncpg.Pool,
) -> None:
    account = await client.register("hook")
    endpoint = await _endpoint(client, account, f"{receiver.url}/rotated")
    generation = await insert_job(db, account.user_id)

    async def rotate() -> str:
        answer = await client.http.post(
            f"/webhooks/{endpoint['id']}/rotate-secret", headers=account.auth
        )
        assert answer.status_code == 200, answer.text
        secret: str = answer.json()["secret"]
        return secret

    async def deliver(seq: int, status: str) -> Received:
        await publish_transition(js, account.user_id, generation, status, seq)
        return await _delivered_at(client, account, endpoint, receiver, "/rotated", seq)

    first = endpoint["secret"]
    second = await rotate()
    request = await deliver(1, "QUEUED")
    assert _signatures(request) == 2
    assert request.verified(second) == request.verified(first)

    # A second rotation in the grace period: the oldest secret signs no more.
    third = await rotate()
    request = await deliver(2, "RUNNING")
    assert _signatures(request) == 2
    assert request.verified(third) == request.verified(second)
    with pytest.raises(Exception, match="signature"):
        request.verified(first)

    # The grace period over (the row moved back in time): the new secret alone signs.
    await db.execute(
        "UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' "
        "WHERE id = $1",
        uuid.UUID(endpoint["id"]),
    )
    request = await deliver(3, "SUCCEEDED")
    assert _signatures(request) == 1
    request.verified(third)
    for old in (first, second):
        with pytest.raises(Exception, match="signature"):
            request.verified(old)
    # The delivery loop's clean-up then erases the secret that signs nothing more.
    kept = "SELECT previous_secret FROM webhook_endpoints WHERE id = $1"
    assert await db.fetchval(kept, uuid.UUID(endpoint["id"])) == second
    async with api.app.state.ctx.sessions() as session:
        await queries.prune(session, days=7)
    assert await db.fetchval(kept, uuid.UUID(endpoint["id"])) is None


async def test_a_restarted_deployment_delivers_what_was_pending_and_published_meanwhile(
    client: ApiClient,
    deployment: Deployment,
    receiver: WebhookReceiver,
    js: JetStreamContext,
    db: asyncpg.Pool,
) -> None:
    account = await client.register("hook")
    endpoint = await _endpoint(client, account, f"{receiver.url}/later")
    endpoint_id = uuid.UUID(endpoint["id"])
    receiver.answer = lambda request: 0  # never answers: the attempt is in flight at the stop
    generation = await insert_job(db, account.user_id)
    await publish_transition(js, account.user_id, generation, "QUEUED", 1)
    await publish_transition(js, account.user_id, generation, "RUNNING", 2)
    await eventually(lambda: receiver.at("/later") or None, what="a first attempt")

    async def both_queued() -> bool:
        count = "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1"
        return bool(await db.fetchval(count, endpoint_id) == 2)

    await eventually(both_queued, what="both messages in the outbox")
    await asyncio.gather(*(asyncio.to_thread(p.stop) for p in deployment.processes))
    pending = await db.fetch(
        "SELECT message_id, status FROM webhook_deliveries WHERE endpoint_id = $1", endpoint_id
    )
    assert sorted((row["message_id"], row["status"]) for row in pending) == [
        (f"{generation}:1", "pending"),
        (f"{generation}:2", "pending"),
    ]
    # Published while no api runs: the durable consumer keeps it.
    await publish_transition(js, account.user_id, generation, "SUCCEEDED", 3)
    before_restart = len(receiver.at("/later"))
    receiver.answer = lambda request: 204

    # Started in threads: the receiver shares this event loop and must answer meanwhile.
    deployment.processes = list(
        await asyncio.gather(*(asyncio.to_thread(deployment.start, f"hooks-{n}") for n in "cd"))
    )
    async with api_http_client(deployment.url) as http:
        items = await eventually(
            lambda: _settled_items(ApiClient(http), account, endpoint, 3),
            what="the backlog delivered after the restart",
            seconds=30,
        )
    assert {item["status"] for item in items} == {"delivered"}
    after_restart = receiver.at("/later")[before_restart:]
    payloads: list[Any] = [request.verified(endpoint["secret"]) for request in after_restart]
    # In order; a repeat is allowed (at least once: an attempt may time out on a busy machine).
    assert list(dict.fromkeys(payload["data"]["seq"] for payload in payloads)) == [1, 2, 3]
