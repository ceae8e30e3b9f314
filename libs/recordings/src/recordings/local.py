"""Recordings as files in one directory on this machine (MEDIA_DIR): the dev default."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from recordings.base import (
    Readable,
    RecordingInfo,
    RecordingMissingError,
    StoreKind,
    StoreUnavailableError,
    safe_name,
)

INCOMING = ".incoming-"
"""Prefix of files still being written: a crash leaves them, never a half file under a name."""


class LocalWriter:
    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        self.size = 0
        self.final = directory / name
        self.partial = directory / f"{INCOMING}{uuid.uuid4().hex}.part"
        self._handle: IO[bytes] | None = None

    def write(self, chunk: bytes) -> None:
        if self._handle is None:
            # "x": a name is never written twice, and a leftover part is never reused.
            self._handle = self.partial.open("xb")
        self._handle.write(chunk)
        self.size += len(chunk)

    def commit(self) -> None:
        if self._handle is None:
            self._handle = self.partial.open("xb")
        self._handle.close()
        self.partial.rename(self.final)

    def abort(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
        with contextlib.suppress(OSError):
            self.partial.unlink()


class LocalDirectory:
    kind: StoreKind = "local"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> str:
        return f"the directory {self.directory} (MEDIA_DIR)"

    def _path(self, name: str) -> Path:
        if not safe_name(name):
            raise RecordingMissingError(f"{name!r} is not a recording name")
        return self.directory / name

    def create(self, name: str) -> LocalWriter:
        self._path(name)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot create {self.describe()}: {exc.strerror}",
                "point MEDIA_DIR at a writable directory",
            ) from None
        return LocalWriter(self.directory, name)

    def stat(self, name: str) -> RecordingInfo:
        try:
            found = self._path(name).stat()
        except FileNotFoundError:
            raise RecordingMissingError(
                f"the recording {name} is not in {self.describe()}",
                "restore it from a backup (`inv backup.restore`) or upload it again",
            ) from None
        modified = datetime.fromtimestamp(found.st_mtime, UTC)
        return RecordingInfo(name, found.st_size, modified)

    def open(self, name: str, start: int = 0, end: int | None = None) -> Readable:
        self.stat(name)
        handle = self._path(name).open("rb")
        handle.seek(start)
        if end is None:
            return handle
        return _Bounded(handle, end - start + 1)

    @contextlib.contextmanager
    def fetch(self, name: str, scratch: Path) -> Iterator[Path]:
        self.stat(name)
        yield self._path(name)

    def local_path(self, name: str) -> Path | None:
        return self._path(name)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def names(self) -> Iterator[str]:
        if not self.directory.is_dir():
            return
        for entry in os.scandir(self.directory):
            if entry.is_file() and safe_name(entry.name):
                yield entry.name

    def check(self, *, write: bool) -> str:
        if not self.directory.is_dir():
            raise StoreUnavailableError(
                f"{self.describe()} does not exist", "create it, or fix MEDIA_DIR"
            )
        if write:
            probe = self.directory / f".probe-{uuid.uuid4().hex}"
            try:
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise StoreUnavailableError(
                    f"cannot write to {self.describe()}: {exc.strerror}",
                    "give the services' user write permission on it",
                ) from None
        return f"directory {self.directory}"


class _Bounded:
    """A file read up to a byte budget: a Range response's body."""

    def __init__(self, handle: IO[bytes], budget: int) -> None:
        self._handle = handle
        self._left = budget

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._handle.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> _Bounded:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
