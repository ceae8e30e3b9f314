"""The local runtime's data: its Postgres through this machine's client tools, MEDIA_DIR on this
machine's disk, and the app services under its supervisord."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.database import libpq_url
from ops import binaries
from ops.errors import OpsError
from ops.runtimes.base import APPS, CLIENT_APPLICATION_NAME, Staged, safe_media_name


@dataclass
class LocalEndpoint:
    """Client binaries on this machine, connected with the owner's DATABASE_OWNER_URL."""

    database_url: str
    database: str = field(init=False)
    user: str = field(init=False)
    _params: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(libpq_url(self.database_url))
        except Exception as exc:
            raise OpsError(
                f"the database URL is not a Postgres URL: {exc}",
                "fix DATABASE_OWNER_URL in .env.<env>",
            ) from None
        self.database = str(params.get("dbname") or params.get("user") or "postgres")
        self.user = str(params.get("user") or "")
        self._params = params

    def conninfo(self, database: str) -> str:
        from psycopg.conninfo import make_conninfo

        params = {k: v for k, v in self._params.items() if k != "password"}
        params["dbname"] = database
        return make_conninfo(**params)

    def argv(self, tool: str, args: Sequence[str], *, database: str) -> list[str]:
        binary = binaries.require(binaries.postgres(tool))
        return [str(binary), *args, "--dbname", self.conninfo(database)]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        password = self._params.get("password")
        if password:
            env["PGPASSWORD"] = str(password)
        env.setdefault("PGCONNECT_TIMEOUT", "10")
        env["PGAPPNAME"] = CLIENT_APPLICATION_NAME
        return env

    def restore_input(self) -> bool:
        return False


@dataclass
class LocalSwap:
    media: Path
    old: Path | None  # where the previous media went (None: there was none)
    failed: Path


@dataclass
class LocalStager:
    """Hard links: milliseconds for thousands of files, and a link keeps a file's data even
    when the app deletes the original right after the row locks are released."""

    media: Path
    target: Path
    files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, names: Sequence[str]) -> list[str]:
        gone = []
        for name in names:
            if not safe_media_name(name):
                gone.append(name)
                continue
            source = self.media / name
            try:
                os.link(source, self.target / name)
            except FileNotFoundError:
                gone.append(name)
                continue
            except OSError:  # another filesystem, or links not allowed: copy
                try:
                    shutil.copy2(source, self.target / name)
                except FileNotFoundError:
                    gone.append(name)
                    continue
            self.files.append(name)
        self.missing += gone
        return gone

    def staged(self) -> Staged:
        return Staged(self.target, list(self.files), list(self.missing), self.discard)

    def discard(self) -> None:
        shutil.rmtree(self.target, ignore_errors=True)


@dataclass
class LocalMedia:
    """MEDIA_DIR on this machine: hard links to stage a backup, renames to swap a restore."""

    directory: Path

    def _sibling(self, kind: str) -> Path:
        # Next to MEDIA_DIR: the same filesystem, so links and renames are cheap and atomic.
        return self.directory.parent / f".{self.directory.name}.{kind}-{uuid.uuid4().hex[:8]}"

    def stager(self, scratch: Path) -> LocalStager:
        target = self._sibling("backup")
        target.mkdir(mode=0o700, parents=True)
        return LocalStager(self.directory, target)

    def restore_dir(self, scratch: Path) -> Path:
        target = self._sibling("restore")
        target.mkdir(mode=0o700, parents=True)  # becomes MEDIA_DIR: private, as `inv up` makes it
        return target

    def swap_in(self, restored: Path) -> LocalSwap:
        swap = LocalSwap(self.directory, None, self._sibling("failed"))
        if self.directory.exists():
            old = self._sibling("before")
            self.directory.rename(old)
            swap.old = old
        restored.rename(self.directory)
        return swap

    def finish(self, token: object) -> None:
        assert isinstance(token, LocalSwap)
        if token.old is not None:
            shutil.rmtree(token.old, ignore_errors=True)

    def rollback(self, token: object) -> None:
        assert isinstance(token, LocalSwap)
        if token.media.exists():
            token.media.rename(token.failed)
        if token.old is not None:
            token.old.rename(token.media)
        shutil.rmtree(token.failed, ignore_errors=True)


@dataclass
class NoApps:
    """No stack of ours runs the apps (a database reached directly): data only."""

    database_url: str
    description: str = "no app services of ours run (the stack is not up): data only"

    def stop(self) -> list[str]:
        return []

    def migrate(self) -> None:
        from ops import db

        db.upgrade_to_head(self.database_url, "migrating the restored database")

    def start(self, names: Sequence[str], timeout: float) -> None:
        return None


@dataclass
class LocalApps:
    """The app services under the environment's supervisord."""

    data_dir: Path
    values: Mapping[str, str]
    description: str = "local runtime (supervisord)"

    def _supervisor(self) -> Any:
        from ops.runtimes.local.supervisor import Layout, Supervisor

        return Supervisor(Layout(self.data_dir))

    def stop(self) -> list[str]:
        sup = self._supervisor()
        states = {i["name"]: i["statename"] for i in sup.info()}
        running = [n for n in APPS if states.get(n) in {"RUNNING", "STARTING", "BACKOFF"}]
        sup.stop_in_order(dict.fromkeys(running, 300), timeout=90)
        return running

    def migrate(self) -> None:
        from ops import db

        db.upgrade_to_head(self.values["DATABASE_OWNER_URL"], "migrating the restored database")

    def start(self, names: Sequence[str], timeout: float) -> None:
        from ops import health

        sup = self._supervisor()
        for name in names:
            sup.start_program(name)
        health.wait(self.values, ["postgres", *names], timeout)
