"""The local runtime's building blocks against real processes: supervisord, Postgres, Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from common.health import run_checks
from mi_testing import free_port
from ops import health
from ops.runtimes.local import stores
from ops.runtimes.local.supervisor import Layout, Program, Supervisor, render_config

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-for-tests-only-0123456789"


def _wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _state(sup: Supervisor, name: str) -> dict:
    return next(i for i in sup.info() if i["name"] == name)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Postgres and Redis under a real supervisord, as `inv up` runs them."""
    data = tmp_path_factory.mktemp("local")
    pg_port, redis_port = free_port(), free_port()
    assert stores.initdb(data / "postgres", "mi", PASSWORD, fsync=False)
    assert not stores.initdb(data / "postgres", "mi", PASSWORD, fsync=False), "initdb runs once"
    programs = [
        stores.postgres_program(data / "postgres", "127.0.0.1", pg_port),
        stores.redis_program(data / "redis", "127.0.0.1", redis_port, PASSWORD),
        Program("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], startsecs=0),
    ]
    layout = Layout(data)
    layout.conf.write_text(render_config(layout, "mi-test", programs))
    sup = Supervisor(layout)
    sup.start(dict(os.environ))
    for program in programs:
        sup.start_program(program.name)
    stores.ensure_database("127.0.0.1", pg_port, "mi", PASSWORD, "meetings")
    values = {
        "DATABASE_URL": f"postgresql+psycopg://mi:{PASSWORD}@127.0.0.1:{pg_port}/meetings",
        "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{redis_port}/0",
        "BACKEND_HOST": "127.0.0.1",
        "BACKEND_PORT": str(free_port()),
        "WHISPER_URL": f"127.0.0.1:{free_port()}",
        "LLM_URL": f"http://127.0.0.1:{free_port()}",
        "OLLAMA_URL": "http://127.0.0.1:1",
    }
    yield sup, values
    pids = [i["pid"] for i in sup.info() if i["pid"]]
    sup.shutdown()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_redis_password_stays_out_of_the_command_line(stack):
    sup, _ = stack
    pid = _state(sup, "redis")["pid"]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    assert PASSWORD not in cmdline
    conf = sup.layout.data / "redis" / "redis.conf"
    assert PASSWORD in conf.read_text()
    assert oct(conf.stat().st_mode & 0o777) == "0o600"


def test_health_sees_the_stores_and_explains_what_is_down(stack):
    _, values = stack
    report = health.run(values)
    results = {r.name: r for r in report.results}

    assert results["postgres"].ok and results["postgres"].detail.startswith("postgres 16")
    assert results["redis"].ok and results["redis"].detail.startswith("redis ")
    assert not report.ok
    assert "ConnectionRefusedError" in results["backend"].detail
    assert results["whisper"].detail.startswith("NotServingError: UNAVAILABLE:")
    assert not results["worker"].ok
    # Checks run in parallel: total time is the slowest check, not the sum of them.
    slowest = max(r.latency_ms for r in report.results)
    assert sum(r.latency_ms for r in report.results) > slowest


def test_wrong_password_is_a_failed_check_not_a_crash(stack):
    _, values = stack
    bad = values["DATABASE_URL"].replace(PASSWORD, "wrong")
    result = asyncio.run(run_checks(health.checks_for({**values, "DATABASE_URL": bad})[:1]))
    assert not result.ok
    assert "password authentication failed" in result.results[0].detail


def test_a_killed_process_is_restarted_by_the_supervisor(stack):
    sup, values = stack
    before = _state(sup, "redis")["pid"]
    os.kill(before, signal.SIGKILL)

    def restarted():
        info = _state(sup, "redis")
        return info["statename"] == "RUNNING" and info["pid"] not in (0, before)

    _wait_for(restarted, what="redis to be restarted")
    _wait_for(lambda: health.run({**values}).results[1].ok, what="redis to answer again")


def test_supervisor_answers_only_its_own_socket(stack, tmp_path):
    sup, _ = stack
    assert sup.pid() is not None
    assert Supervisor(Layout(tmp_path)).pid() is None
    assert oct(sup.layout.socket.stat().st_mode & 0o777) == "0o700"
