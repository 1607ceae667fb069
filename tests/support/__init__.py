"""Plain helpers the tests share (fixtures live in the conftest.py files).

One of each: `eventually` for polling, `kubectl` for the cluster, `SseReader` for server-sent
events, `scratch_database` for a database of a test's own, and `register`/`insert_user` for
users, so that a fix to any of them reaches every test at once.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
