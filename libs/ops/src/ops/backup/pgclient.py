"""Postgres client tools (psql, pg_dump, pg_restore) against one environment's server.

Backup and restore talk to Postgres only through these three tools, so the same code serves
both runtimes through their `Endpoint` (ops.runtimes.base): the local runtime runs the pgserver
wheel's binaries on this machine over TCP (or a socket), the compose runtime the ones inside
the postgres container through `docker compose exec -T`.

`PsqlSession` keeps one psql process open and feeds it statements: a backup holds a
transaction open across several steps (lock, export a snapshot, count rows) while pg_dump
reads the same snapshot, and psql is what exists on both sides.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ops import project
from ops.errors import OpsError
from ops.runtimes.base import Endpoint

STATEMENT_TIMEOUT = 600.0


def _workdir() -> Path | None:
    """The checkout (compose's relative -f paths), or None where there is none: the backup
    job's image runs the client tools directly."""
    try:
        return project.root()
    except OpsError:
        return None


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A quoted SQL string literal (standard_conforming_strings is on since PG 9.1)."""
    return "'" + value.replace("'", "''") + "'"


UNREACHABLE = ("connection to server", "could not connect", "could not translate host name")
UNREACHABLE_FIX = (
    "is the stack up (`inv ps --env <env>`, `inv up --env <env>`)? "
    "Otherwise check DATABASE_URL / POSTGRES_* in .env.<env>"
)


class PgError(OpsError):
    """A client tool or statement failed; `detail` is the server's message."""

    def __init__(self, what: str, detail: str, fix: str = "") -> None:
        self.detail = detail
        if not fix and any(marker in detail for marker in UNREACHABLE):
            what, fix = "the database does not answer", UNREACHABLE_FIX
        super().__init__(f"{what}: {detail}", fix)


def run_tool(
    endpoint: Endpoint,
    tool: str,
    args: Sequence[str],
    *,
    database: str,
    stdout: IO[bytes] | None = None,
    stdin: IO[bytes] | None = None,
    what: str,
) -> None:
    """Run a client tool to completion; a non-zero exit is a PgError with its stderr."""
    argv = endpoint.argv(tool, args, database=database)
    proc = subprocess.run(
        argv,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=endpoint.env(),
        cwd=_workdir(),  # compose resolves its -f paths from the repository root
        check=False,
    )
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
        raise PgError(what, _last_lines(message))


def _last_lines(text: str, count: int = 6) -> str:
    return "\n  ".join(text.splitlines()[-count:])


class PsqlSession:
    """One psql process kept open; statements run one after the other in its session."""

    def __init__(self, endpoint: Endpoint, database: str) -> None:
        args = ["--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "-v", "ON_ERROR_STOP=1"]
        self.database = database
        self._proc = subprocess.Popen(
            endpoint.argv("psql", args, database=database),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=endpoint.env(),
            cwd=_workdir(),
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        assert self._proc.stdout is not None and self._proc.stderr is not None
        threading.Thread(target=self._pump, args=(self._proc.stdout,), daemon=True).start()
        self._err_thread = threading.Thread(
            target=self._stderr.extend, args=(self._proc.stderr,), daemon=True
        )
        self._err_thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def __enter__(self) -> PsqlSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def execute(self, sql: str, *, timeout: float = STATEMENT_TIMEOUT) -> list[str]:
        """Run `sql` (one or more statements); the output lines, or PgError when it fails."""
        marker = f"--mi-done-{uuid.uuid4().hex}--"
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(f"{sql.rstrip().rstrip(';')};\n\\echo {marker}\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._failure(sql) from None
        lines: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self.close()
                raise PgError(
                    f"{_short(sql)} did not finish", f"no answer within {timeout:g}s"
                ) from None
            if line is None:
                raise self._failure(sql)
            if line == marker:
                return lines
            lines.append(line)

    def value(self, sql: str, **kw: Any) -> str | None:
        """The first column of the first row (None when there is no row)."""
        lines = self.execute(sql, **kw)
        return lines[0] if lines else None

    def json(self, sql: str, **kw: Any) -> Any:
        """The JSON document a single-row, single-column query returns."""
        return json.loads("\n".join(self.execute(sql, **kw)) or "null")

    def _failure(self, sql: str) -> PgError:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(10)
        self._err_thread.join(5)
        message = "".join(self._stderr).strip() or f"psql exited with {self._proc.returncode}"
        return PgError(_short(sql), _last_lines(message))

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


def _short(sql: str) -> str:
    first = " ".join(sql.split())
    return first if len(first) <= 80 else first[:77] + "..."


def table_counts(session: PsqlSession) -> dict[str, int]:
    """Rows per table (schema-qualified) in the session's current snapshot."""
    tables: list[str] = session.json(
        "SELECT coalesce(jsonb_agg(format('%I.%I', schemaname, tablename)"
        " ORDER BY schemaname, tablename), '[]') FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    if not tables:
        return {}
    # Names come back quoted by format('%I.%I'): safe to splice in.
    pairs = ", ".join(f"{literal(t)}, (SELECT count(*) FROM {t})" for t in tables)  # noqa: S608
    counts: Mapping[str, int] = session.json(f"SELECT jsonb_build_object({pairs})")
    return {name: int(counts[name]) for name in tables}


def alembic_revision(session: PsqlSession) -> str | None:
    exists = session.value("SELECT to_regclass('public.alembic_version') IS NOT NULL")
    if exists != "t":
        return None
    return session.value("SELECT version_num FROM public.alembic_version LIMIT 1")
