"""The fixtures every suite relies on: fresh, real, and gone afterwards."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis

from common.database import libpq_url
from meetings import migrations
from mi_testing import ServiceProcess, subprocess_env


def test_each_test_gets_a_database_of_its_own_at_head(database_url: str, postgres) -> None:
    other = postgres.create_database(migrated=True)
    try:
        assert other != database_url
        assert migrations.current(database_url) == migrations.head()
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO meetings (id, title, status, media_filename, content_type,"
                " size_bytes) VALUES (gen_random_uuid(), 't', 'queued', 'a.wav',"
                " 'audio/wav', 1)"
            )
        with psycopg.connect(libpq_url(other)) as conn:
            assert conn.execute("SELECT count(*) FROM meetings").fetchone() == (0,)
    finally:
        postgres.drop_database(other)
    with psycopg.connect(libpq_url(postgres.url()), autocommit=True) as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert other.split("/")[-1].split("?")[0] not in names


def test_an_empty_database_has_no_schema(empty_database_url: str) -> None:
    assert migrations.current(empty_database_url) is None


def test_the_services_role_is_no_superuser_and_may_change_rows_only(
    database_url: str, postgres
) -> None:
    """database_url is the app role's, as the services' DATABASE_URL: rows, nothing more."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, current_setting('statement_timeout')"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, "30s")
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles"
            " WHERE rolname = current_user)"
        ).fetchone()
        assert owned == (0,)
        conn.execute(
            "INSERT INTO meetings (id, title, status, media_filename, content_type,"
            " size_bytes) VALUES (gen_random_uuid(), 't', 'queued', 'a.wav', 'audio/wav', 1)"
        )
        assert conn.execute("DELETE FROM meetings").rowcount == 1
        for statement, refusal in [
            ("COPY (SELECT 1) TO PROGRAM 'id'", "permission denied to COPY"),
            ("COPY meetings FROM '/etc/passwd'", "permission denied to COPY"),
            ("CREATE TABLE public.planted (x int)", "permission denied for schema public"),
            ("CREATE SCHEMA planted", "permission denied for database"),
            ("ALTER TABLE meetings ADD COLUMN planted int", "must be owner of table"),
            ("DROP TABLE action_items", "must be owner of table"),
            ("DROP EXTENSION vector CASCADE", "must be owner of extension"),
        ]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal):
                conn.execute(statement)


def test_a_runaway_statement_of_the_services_is_cancelled(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("SET statement_timeout = '200ms'")  # the role's 30 s, shortened to test
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute("SELECT pg_sleep(5)")


def test_migrations_run_as_the_owner_role_which_is_no_superuser(
    empty_database_url: str,
) -> None:
    assert "mi_owner@" in empty_database_url
    migrations.upgrade(empty_database_url)
    assert migrations.current(empty_database_url) == migrations.head()
    with psycopg.connect(libpq_url(empty_database_url), autocommit=True) as conn:
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'id'")
    migrations.downgrade(empty_database_url, "base")
    assert migrations.current(empty_database_url) is None


@pytest.mark.parametrize("round_", [1, 2])
def test_redis_is_empty_for_every_test(redis_url: str, round_: int) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("left-behind", str(round_))
    finally:
        client.close()


def test_a_killed_service_takes_its_children_with_it(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(child_pid_file)!r}, 'w').write(str(c.pid)); time.sleep(60)"
    )
    service = ServiceProcess([sys.executable, "-c", script], subprocess_env(), tmp_path / "log")
    service.start()
    service.wait_until(child_pid_file.exists, timeout=30, what="the child to start")
    child = int(child_pid_file.read_text())
    service.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the child outlived its killed parent")
