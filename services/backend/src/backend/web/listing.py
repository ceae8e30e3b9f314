"""The meeting list, newest first, one page at a time by keyset (cursor) pagination.

A page is "the N meetings just older (or newer) than this (created_at, id)", which the
(created_at, id) index answers by reading N rows wherever the page is; OFFSET would read and
throw away every row before the page, so page 500 of 10,000 meetings would cost 500 pages.
The cursor names the last row seen, so meetings uploaded meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row

PAGE_SIZE = 20

# Row comparison `(created_at, id) < (...)` is what lets Postgres walk the index from the
# cursor; ORDER BY matches the index (backwards for older pages).
_FIRST_SQL = """
    SELECT id, title, status, error, original_filename, size_bytes, created_at, completed_at
    FROM meetings
    ORDER BY created_at DESC, id DESC LIMIT %(n)s
"""
_OLDER_SQL = """
    SELECT id, title, status, error, original_filename, size_bytes, created_at, completed_at
    FROM meetings WHERE (created_at, id) < (%(at)s, %(id)s)
    ORDER BY created_at DESC, id DESC LIMIT %(n)s
"""
_NEWER_SQL = """
    SELECT id, title, status, error, original_filename, size_bytes, created_at, completed_at
    FROM meetings WHERE (created_at, id) > (%(at)s, %(id)s)
    ORDER BY created_at ASC, id ASC LIMIT %(n)s
"""


class BadCursorError(ValueError):
    """A page link that was not made by us (edited or truncated)."""


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            stamp, _, ident = raw.partition("|")
            created_at = datetime.fromisoformat(stamp)
            if created_at.tzinfo is None:
                raise ValueError("naive timestamp")
            return cls(created_at, uuid.UUID(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise BadCursorError(str(exc)) from None


@dataclass(frozen=True)
class MeetingPage:
    rows: list[dict[str, object]]
    older: Cursor | None
    """Cursor of the next (older) page, when there is one."""
    newer: Cursor | None
    """Cursor of the previous (newer) page, when this is not the first page."""


def _cursor(row: dict[str, object]) -> Cursor:
    created_at, ident = row["created_at"], row["id"]
    assert isinstance(created_at, datetime) and isinstance(ident, uuid.UUID)
    return Cursor(created_at, ident)


async def meeting_page(
    conn: AsyncConnection,
    cursor: Cursor | None = None,
    direction: Literal["older", "newer"] = "older",
    size: int = PAGE_SIZE,
) -> MeetingPage:
    """One page; one row more than shown is read to know whether another page follows."""
    params = {"n": size + 1}
    if cursor is None:
        sql = _FIRST_SQL
    else:
        params.update({"at": cursor.created_at, "id": cursor.id})  # type: ignore[dict-item]
        sql = _OLDER_SQL if direction == "older" else _NEWER_SQL
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        rows: list[dict[str, object]] = list(await cur.fetchall())
    more = len(rows) > size
    rows = rows[:size]
    if cursor is not None and direction == "newer":
        rows.reverse()  # read oldest-first from the cursor; shown newest first
        return MeetingPage(
            rows,
            older=_cursor(rows[-1]) if rows else cursor,
            newer=_cursor(rows[0]) if more and rows else None,
        )
    return MeetingPage(
        rows,
        older=_cursor(rows[-1]) if more else None,
        newer=_cursor(rows[0]) if cursor is not None and rows else None,
    )
