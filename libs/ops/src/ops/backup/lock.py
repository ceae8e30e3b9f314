"""One backup or restore per environment at a time, in its backups directory."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path

from ops.backup import archive
from ops.environment import Environment
from ops.errors import OpsError


@contextlib.contextmanager
def exclusive(env: Environment) -> Iterator[Path]:
    """One backup or restore per environment at a time; leftovers of a crash are removed."""
    directory = env.backups_dir
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (directory / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OpsError(
                f"another backup or restore of {env} is running",
                "wait for it to finish, then run this again",
            ) from None
        for stale in directory.glob(f".*{archive.PARTIAL_SUFFIX}"):
            stale.unlink(missing_ok=True)  # a crashed run's unfinished archive
        for stale in directory.glob(".work-*"):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            yield directory
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
