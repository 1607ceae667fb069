"""The backing services answer the way the api, operator and worker will use them.

Settings come only from `stack_env`; names are unique per run and cleaned up, so the tests
also hold against a long-lived stack.
"""

from __future__ import annotations

import os
import uuid

import asyncpg
import httpx
import nats
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]
from nats.errors import TimeoutError as NatsTimeoutError

pytestmark = pytest.mark.stack

PROJECT = "genvid-local"


async def test_postgres_accepts_a_connection_and_queries(stack_env: dict[str, str]) -> None:
    connection = await asyncpg.connect(stack_env["DATABASE_URL"], timeout=10)
    try:
        assert await connection.fetchval("SELECT current_database()") == "genvid"
        table = f"probe_{uuid.uuid4().hex[:8]}"
        await connection.execute(f"CREATE TEMP TABLE {table} (id int, note text)")
        await connection.execute(f"INSERT INTO {table} VALUES ($1, $2)", 7, "héllo")
        row = await connection.fetchrow(f"SELECT id, note FROM {table}")
        assert row is not None
        assert (row["id"], row["note"]) == (7, "héllo")
    finally:
        await connection.close()


async def test_nats_jetstream_durable_consumer(stack_env: dict[str, str]) -> None:
    suffix = uuid.uuid4().hex[:8]
    stream, subject, durable = f"PROBE_{suffix}", f"probe.{suffix}.jobs", "probe-worker"
    client = await nats.connect(stack_env["NATS_URL"], connect_timeout=5)
    js = client.jetstream()
    try:
        await js.add_stream(name=stream, subjects=[f"probe.{suffix}.>"])
        ack = await js.publish(subject, b"render fox", timeout=5)
        assert (ack.stream, ack.seq) == (stream, 1)

        subscription = await js.pull_subscribe(subject, durable=durable, stream=stream)
        messages = await subscription.fetch(1, timeout=5)
        assert [message.data for message in messages] == [b"render fox"]
        await messages[0].ack_sync(timeout=5)

        with pytest.raises(NatsTimeoutError):
            await subscription.fetch(1, timeout=1)
        info = await js.consumer_info(stream, durable)
        assert (info.num_pending, info.num_ack_pending) == (0, 0)

        async with httpx.AsyncClient(trust_env=False) as http:
            response = await http.get(f"{stack_env['NATS_MONITOR_URL']}/jsz", timeout=5)
        response.raise_for_status()
        assert response.json()["consumers"] >= 1
    finally:
        try:
            await js.delete_stream(stream)
        finally:
            await client.close()


def test_storage_emulator_roundtrip(stack_env: dict[str, str]) -> None:
    client = storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": stack_env["STORAGE_EMULATOR_HOST"]},
    )
    bucket_name = stack_env["GENVID_BUCKET"]
    assert client.lookup_bucket(bucket_name) is not None

    data = os.urandom(3 * 1024 * 1024 + 17)
    # A chunked, resumable upload, as large videos go: it follows the emulator's Location header.
    blob = client.bucket(bucket_name).blob(f"probes/{uuid.uuid4().hex}.mp4", chunk_size=1024 * 1024)
    blob.upload_from_string(data, content_type="video/mp4")
    try:
        fetched = client.bucket(bucket_name).blob(blob.name)
        assert fetched.download_as_bytes() == data
        fetched.reload()
        assert fetched.size == len(data)
        assert fetched.content_type == "video/mp4"
    finally:
        blob.delete()
