"""When a finished VideoGeneration may be deleted, without a cluster: only finished, synced,
and past its retention counted from status.finishedAt."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from genvid_operator.retention import Expiring, due, expired, expires_at

NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def status(phase: str = "SUCCEEDED", seq: int = 3, synced: int = 3, **extra: Any) -> Any:
    return {
        "phase": phase,
        "eventSeq": seq,
        "syncedSeq": synced,
        "finishedAt": "2026-11-23T07:00:00Z",
        **extra,
    }


@pytest.mark.parametrize("phase", ["SUCCEEDED", "FAILED", "CANCELED", "REJECTED"])
def test_finished_and_synced_past_retention_is_due(phase: str) -> None:
    assert expires_at(status(phase), DAY) == dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
    assert due(status(phase), NOW, DAY)


def test_not_due_before_its_retention_is_over() -> None:
    assert not due(status(), NOW, 2 * DAY)
    assert due(status(), NOW, dt.timedelta(hours=25))  # exactly at expiry


@pytest.mark.parametrize(
    "case",
    [
        status(synced=2),  # its final transition is not in Postgres and published yet
        status(synced=0),
        {k: v for k, v in status().items() if k != "syncedSeq"},
        status("RUNNING"),
        status("QUEUED"),
        {k: v for k, v in status().items() if k != "finishedAt"},
        {},
    ],
)
def test_unfinished_or_unsynced_is_never_due(case: Any) -> None:
    assert expires_at(case, dt.timedelta(0)) is None
    assert not due(case, NOW + 365 * DAY, dt.timedelta(0))


def test_expired_entries_oldest_first() -> None:
    def entry(hours: int) -> Expiring:
        return Expiring("uid", "1", NOW - dt.timedelta(hours=hours))

    entries = [("a", entry(1)), ("b", entry(-1)), ("c", entry(5)), ("d", entry(0))]
    assert [name for name, _ in expired(entries, NOW)] == ["c", "a", "d"]
