"""Opaque keyset cursors: base64url of `<timestamp>|<uuid>`, the last row's sort key.

A page is "rows strictly after this key in the listing's order", so rows added before the
cursor's position (new videos at the top of a feed) never shift later pages: no duplicates,
no gaps. Clients must treat cursors as opaque.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import HTTPException, Query, status

_MAX_LENGTH = 200

CursorQuery = Annotated[
    str | None,
    Query(max_length=_MAX_LENGTH, description="`next_cursor` of the previous page"),
]
LimitQuery = Annotated[
    int | None, Query(ge=1, le=100, description="Page size (default GENVID_LIST_LIMIT_DEFAULT)")
]


class InvalidCursor(ValueError):
    pass


def encode(when: datetime, row_id: uuid.UUID) -> str:
    raw = f"{when.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when_text, _, row_id = raw.partition("|")
        when = datetime.fromisoformat(when_text)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        return when.astimezone(UTC), uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError) as exc:
        raise InvalidCursor("invalid cursor") from exc


def decode_or_422(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """For route handlers: None without a cursor; a malformed one is a 422 naming `cursor`."""
    if cursor is None:
        return None
    try:
        return decode(cursor)
    except InvalidCursor:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
        ) from None
