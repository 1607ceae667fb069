"""Fixtures of the worker tests: a fake Veo server of their own, and the stack's bucket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]

from genvid_devstack.veo import FakeVeo, start_fake_veo


@pytest.fixture(scope="module")
def fake_veo(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeVeo]:
    fake = start_fake_veo(tmp_path_factory.mktemp("fake-veo"), stack_env["STORAGE_EMULATOR_HOST"])
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def bucket(stack_env: dict[str, str]) -> Any:
    client = storage.Client(
        project="genvid-local",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": stack_env["STORAGE_EMULATOR_HOST"]},
    )
    return client.bucket(stack_env["GENVID_BUCKET"])
