"""What every runtime does, and the adapters through which the rest of ops reaches a stack.

Tasks only talk to `Runtime`. Backup, restore and migrations need three more things from a
running stack, which each runtime provides in its own way (`StackData`): the Postgres client
tools (`Endpoint`), the recordings (`MediaStore`) and the app services that write the data
(`AppControl`). So no code outside `ops.runtimes` asks which runtime it is on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ops.environment import Environment


@dataclass(frozen=True)
class ServiceState:
    """One service as `inv ps` shows it."""

    service: str
    state: str  # running | starting | stopped | exited | failed | unhealthy | healthy
    ident: str  # pid (local) or container name (compose)
    uptime: str = ""
    url: str = ""


# --- the adapters ---------------------------------------------------------------------------


CLIENT_APPLICATION_NAME = "mi-backup"
"""How the client tools show up in pg_stat_activity."""


class Endpoint(Protocol):
    """How to run psql, pg_dump and pg_restore against the environment's Postgres."""

    database: str  # the app's database
    user: str

    def argv(self, tool: str, args: Sequence[str], *, database: str) -> list[str]:
        """The argv running `tool args...` connected to `database`."""

    def env(self) -> dict[str, str]:
        """The environment the argv runs with (passwords travel here, not on command lines)."""

    def restore_input(self) -> bool:
        """True when pg_restore must read the dump from stdin (it is not on the same machine)."""


def safe_media_name(name: str) -> bool:
    """Media file names come from database rows: never let one point outside the media."""
    return bool(name) and "/" not in name and "\\" not in name and name not in {".", ".."}


@dataclass(frozen=True)
class StagedFile:
    stream: IO[bytes]
    size: int
    mtime: float


@dataclass
class Staged:
    """Media files set aside for a backup: `directory/<name>` for each of `files` (stores that
    are not on this disk override `open`)."""

    directory: Path
    files: list[str]
    missing: list[str]
    cleanup: Callable[[], None] = lambda: None

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[StagedFile]:
        """One staged file's bytes, read once into the archive."""
        path = self.directory / name
        stat = path.stat()
        with path.open("rb") as stream:
            yield StagedFile(stream, stat.st_size, stat.st_mtime)


class Stager(Protocol):
    """Sets one backup's recordings aside cheaply (hard links, server-side copies): most of
    them before the meeting rows are locked, those uploaded meanwhile under the lock; the
    bytes are read afterwards, unlocked, from what was set aside (ops.backup.create)."""

    def add(self, names: Sequence[str]) -> list[str]:
        """Set `names` aside now; the names whose recording was not there. Called more than
        once."""

    def staged(self) -> Staged:
        """Everything set aside, ready to be read (no row is locked any more)."""

    def discard(self) -> None:
        """Remove what was set aside (the backup failed before `staged`)."""


class MediaStore(Protocol):
    def stager(self, scratch: Path) -> Stager:
        """A stager for one backup (`scratch`: this machine's working directory for it)."""

    def restore_dir(self, scratch: Path) -> Path:
        """An empty directory to extract a backup's media into before the swap."""

    def swap_in(self, restored: Path) -> object:
        """Make `restored` the media; returns a token for `finish` or `rollback`."""

    def finish(self, token: object) -> None:
        """Delete the media that was replaced (the restore succeeded)."""

    def rollback(self, token: object) -> None:
        """Put the replaced media back."""


class AppControl(Protocol):
    description: str

    def stop(self) -> list[str]:
        """Stop the services that write data; returns those that were running."""

    def migrate(self) -> None:
        """Bring the (restored) database to the code's head revision."""

    def start(self, names: Sequence[str], timeout: float) -> None:
        """Start `names` again and wait until they are healthy."""


APPS = ("backend", "worker")
"""The services that write the data: stopped while a restore swaps it."""


@dataclass
class StackData:
    """Where one environment's data lives and who writes it, as its runtime reaches them."""

    runtime: str  # local | compose | direct (no stack of ours runs: data only)
    endpoint: Endpoint
    media: MediaStore
    apps: AppControl

    @property
    def database(self) -> str:
        return self.endpoint.database


# --- the runtime ----------------------------------------------------------------------------


class Runtime(Protocol):
    """One way to run one environment's stack; made by `ops.runtimes.select`."""

    name: str
    env: Environment

    def up(self, *, timeout: float, offline: bool = False, monitoring: bool = False) -> None:
        """Start everything and return once healthy; idempotent. `offline` fetches nothing
        (no model pulls); `monitoring` also runs Flower and Prometheus."""

    def down(self, *, volumes: bool) -> None:
        """Stop everything; with `volumes`, delete the environment's data too."""

    def ps(self) -> list[ServiceState]:
        """The state of every service (empty when nothing runs)."""

    def logs(self, *, service: str | None, follow: bool, tail: int) -> None:
        """Print the services' logs to stdout."""

    def is_running(self) -> bool:
        """Whether any part of the stack is up."""

    def data(self) -> StackData:
        """The adapters backup, restore and migrations use to reach this stack's data."""
