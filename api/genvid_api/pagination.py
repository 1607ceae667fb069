"""Keyset pagination: one dependency for `limit` and `cursor`, and the cursor codec.

A cursor is the base64url of `<timestamp>|<uuid>`, the last row's sort key. A page is "rows
strictly after this key in the listing's order", so rows added before the cursor's position (new
videos at the top of a feed) never shift later pages: no duplicates, no gaps. Clients must
treat cursors as opaque. Pages are `models.Page[T]`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Query

from genvid_api.deps import SettingsDep
from genvid_api.errors import Invalid

T = TypeVar("T")
Key = tuple[datetime, uuid.UUID]

MAX_LIMIT = 100
_MAX_CURSOR_LENGTH = 200


def encode(key: Key) -> str:
    when, row_id = key
    raw = f"{when.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Key:
    """Raises ValueError for anything `encode` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when_text, _, row_id = raw.partition("|")
        when = datetime.fromisoformat(when_text)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        return when.astimezone(UTC), uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError) as exc:
        raise ValueError("invalid cursor") from exc


@dataclass(frozen=True)
class PageRequest:
    """What a listing query needs: how many rows, and after which key (None: from the start)."""

    limit: int
    after: Key | None = None

    @property
    def fetch(self) -> int:
        """Rows a query asks for: one more than the page tells whether another page follows."""
        return self.limit + 1

    def cut(self, rows: list[T], key: Callable[[T], Key]) -> tuple[list[T], str | None]:
        """A query's `fetch` rows: the page's, and the cursor of the next page (None: last)."""
        if len(rows) <= self.limit:
            return rows, None
        rows = rows[: self.limit]
        return rows, encode(key(rows[-1]))


LimitQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_LIMIT, description="Page size (default GENVID_LIST_LIMIT_DEFAULT)"),
]
CursorQuery = Annotated[
    str | None,
    Query(max_length=_MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page"),
]


def _limit(settings: SettingsDep, limit: LimitQuery = None) -> int:
    return limit or settings.list_limit_default


def _page_request(
    settings: SettingsDep, limit: LimitQuery = None, cursor: CursorQuery = None
) -> PageRequest:
    """A malformed cursor is a 422 naming `cursor`, as a malformed `limit` is FastAPI's."""
    page = PageRequest(_limit(settings, limit))
    if cursor is None:
        return page
    try:
        return PageRequest(page.limit, decode(cursor))
    except ValueError:
        raise Invalid.field(("query", "cursor"), "invalid cursor", "value_error") from None


# The first page's size only (a profile shows the first page of videos).
Limit = Annotated[int, Depends(_limit)]
PageParams = Annotated[PageRequest, Depends(_page_request)]
