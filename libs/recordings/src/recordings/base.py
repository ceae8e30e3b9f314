"""The one interface every store of recordings offers, and how its failures are reported.

Recordings are named by the backend (`<uuid hex>.<ext>`, flat, never the client's name) and
never change once stored: a name is written once, read many times, deleted once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

StoreKind = Literal["local", "s3"]
CHUNK = 1024 * 1024


def safe_name(name: str) -> bool:
    """Names come from database rows: never let one point outside the store."""
    return (
        bool(name)
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and name not in {".", ".."}
        and not name.startswith(".")
    )


class StoreError(Exception):
    """The store cannot do what was asked. `problem` says which, `fix` what to do."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem = problem
        self.fix = fix


class StoreUnavailableError(StoreError):
    """Reaching the store failed (down, refused the credentials, no such bucket, no
    permission): nothing was stored; the same request succeeds once the cause is fixed."""


class RecordingMissingError(StoreError):
    """The store answers, but this recording is not in it (deleted behind the app's back)."""


class Readable(Protocol):
    """A stream of bytes being read; the reader closes it."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RecordingInfo:
    name: str
    size: int
    modified: datetime
    etag: str = ""


class RecordingWriter(Protocol):
    """One recording being written. Nothing is visible under `name` until `commit()`;
    `abort()` discards what was written and never raises."""

    name: str
    size: int

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class MediaStore(Protocol):
    kind: StoreKind

    def describe(self) -> str:
        """Where the recordings are, for messages: a directory or s3://bucket/prefix at URL."""

    def create(self, name: str) -> RecordingWriter:
        """Start writing a new recording called `name` (streamed: bounded memory)."""

    def stat(self, name: str) -> RecordingInfo:
        """Size and time of a recording; RecordingMissingError when it is not there."""

    def open(self, name: str, start: int = 0, end: int | None = None) -> Readable:
        """A stream of the recording's bytes [start, end] (end inclusive, None: to the end).
        The caller closes it."""

    def fetch(self, name: str, scratch: Path) -> AbstractContextManager[Path]:
        """The recording as a file on this machine for as long as the context lasts (a
        download into `scratch` for remote stores; the file itself for a local directory)."""

    def local_path(self, name: str) -> Path | None:
        """The file itself when the store is a directory on this machine, else None."""

    def delete(self, name: str) -> None:
        """Remove a recording; one that is already gone is not an error."""

    def names(self) -> Iterator[str]:
        """Every stored recording's name (work files and probes excluded)."""

    def check(self, *, write: bool) -> str:
        """Raise StoreUnavailableError saying what is wrong, else a one-line detail. With
        `write`, also prove that a recording can be written and deleted."""
