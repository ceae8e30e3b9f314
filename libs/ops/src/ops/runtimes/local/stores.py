"""Postgres and Redis for the local runtime, from pip-installed (or system) binaries."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from ops import binaries
from ops.errors import OpsError
from ops.runtimes.local.supervisor import Program

# Postgres refuses to run as root (CI machines, containers); it then runs as this user.
POSTGRES_SYSTEM_USER = "mi-postgres"


def system_user() -> str | None:
    """The account the Postgres server runs as: None means "whoever runs inv"."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        proc = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                POSTGRES_SYSTEM_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise OpsError(
                f"running as root, and could not create the {POSTGRES_SYSTEM_USER} user that "
                f"Postgres needs: {proc.stderr.strip()}",
                "run `inv up` as a regular user",
            ) from None
    return POSTGRES_SYSTEM_USER


def _hand_over(pgdata: Path, user: str) -> None:
    """Let `user` reach and own the data directory (traverse-only on the parents)."""
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    for parent in pgdata.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def initdb(pgdata: Path, user: str, password: str, *, fsync: bool) -> bool:
    """Create the cluster once; returns whether it was created now."""
    if (pgdata / "PG_VERSION").exists():
        return False
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    owner = system_user()
    if owner:
        _hand_over(pgdata, owner)
    # Readable by the server's user only, and gone as soon as initdb has read it.
    with tempfile.NamedTemporaryFile("w", dir=pgdata.parent, delete=False, prefix=".pw") as pwfile:
        pwfile.write(password)
    if owner:
        import shutil

        shutil.chown(pwfile.name, owner)
    try:
        argv = [
            str(binaries.require(binaries.postgres("initdb"))),
            "-D",
            str(pgdata),
            "-U",
            user,
            f"--pwfile={pwfile.name}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
        ]
        if not fsync:
            argv.append("--no-sync")  # dev only: a crash during initdb just means re-init
        # Drop root's groups too: a root group would select the directories' group bits.
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            user=owner,
            group=owner,
            extra_groups=[] if owner else None,
        )
    finally:
        Path(pwfile.name).unlink(missing_ok=True)
    if proc.returncode != 0:
        raise OpsError(f"initdb failed: {proc.stderr.strip()[-500:]}", f"remove {pgdata} and retry")
    return True


def postgres_program(pgdata: Path, host: str, port: int) -> Program:
    argv = [
        str(binaries.require(binaries.postgres("postgres"))),
        "-D",
        str(pgdata),
        "-p",
        str(port),
        "-c",
        f"listen_addresses={host}",
        # TCP only: socket paths under deep checkouts overflow the unix socket limit.
        "-c",
        "unix_socket_directories=",
    ]
    # SIGINT is Postgres's "fast" shutdown: roll back sessions, checkpoint, exit.
    return Program("postgres", argv, stopsignal="INT", stopwaitsecs=60, user=system_user())


def redis_program(datadir: Path, host: str, port: int, password: str) -> Program:
    """redis-server with its password in a 0600 config file, not on the command line."""
    datadir.mkdir(parents=True, exist_ok=True)
    conf = datadir / "redis.conf"
    text = "\n".join(
        [
            f"bind {host}",
            f"port {port}",
            "protected-mode yes",
            f'requirepass "{password}"',
            f"dir {datadir}",
            "appendonly yes",
            "appendfsync everysec",
            "daemonize no",
            "",
        ]
    )
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    binary = binaries.require(binaries.redis_server())
    return Program("redis", [str(binary), str(conf)])


def wait_until_ready(host: str, port: int, user: str, password: str, timeout: float = 30) -> None:
    """Wait until Postgres accepts `user`'s connections."""
    import psycopg

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(
                host=host,
                port=port,
                user=user,
                password=password,
                dbname="postgres",
                connect_timeout=2,
                autocommit=True,
            ):
                return
        except psycopg.OperationalError as exc:
            last_error = exc
            time.sleep(0.1)
    raise OpsError(
        f"postgres on {host}:{port} did not accept connections within {timeout:g}s: {last_error}",
        "see the postgres log: `inv logs --service postgres`",
    )


def ensure_database(
    host: str, port: int, user: str, password: str, dbname: str, timeout: float = 30
) -> None:
    """Wait until Postgres accepts connections, then create `dbname` if it is missing."""
    import psycopg
    from psycopg import sql

    wait_until_ready(host, port, user, password, timeout)
    with psycopg.connect(
        host=host, port=port, user=user, password=password, dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def bootstrap_roles(values: Mapping[str, str], timeout: float = 30) -> None:
    """Once Postgres answers: the owner and app roles and the database (roles.psql), as the
    superuser initdb made. Every `inv up` runs it: it converges a cluster made by an older
    release, and a changed password or statement timeout in the env file."""
    from ops import postgres_roles

    host, port = values["POSTGRES_HOST"], int(values["POSTGRES_PORT"])
    user, password = values["POSTGRES_USER"], values["POSTGRES_PASSWORD"]
    wait_until_ready(host, port, user, password, timeout)
    admin = {"PGHOST": host, "PGPORT": str(port), "PGUSER": user, "PGPASSWORD": password}
    postgres_roles.apply(values, admin)
