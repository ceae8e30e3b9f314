"""The compose healthchecks and service configs that can run without an engine, run for real:
the worker's Celery ping against a real worker, Redis with infra/redis/redis.conf and its
password, the Postgres init script on a real Postgres with pgvector."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mi_testing import free_port
from ops import binaries

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def dev_config(infra_check, validators, tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("env")
    env_file = infra_check.write_env_file("dev", infra_check.throwaway_env("dev"), tmp)
    return infra_check.merged_config(ROOT, "dev", env_file)


def healthcheck_shell(config: dict[str, Any], service: str) -> str:
    test = config["services"][service]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL", test
    # `config` prints compose's own escaping ($$ for a literal $); the engine unescapes it.
    return str(test[1]).replace("$$", "$")


def run_shell(command: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", command],
        env={"PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- worker -----------------------------------------------------------------------------------


@pytest.fixture
def celery_worker(redis_url: str, database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "MEDIA_DIR": str(tmp_path),
        "LOG_JSON": "false",
        "WORKER_METRICS_PORT": str(free_port()),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "--pool", "solo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield {"REDIS_URL": redis_url, "DATABASE_URL": database_url}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_the_worker_healthcheck_pings_this_containers_celery_node(dev_config, celery_worker):
    command = healthcheck_shell(dev_config, "worker")
    assert "--timeout 10" in command
    quick = command.replace("--timeout 10", "--timeout 1")  # same check, shorter wait per try
    hostname = socket.gethostname()  # what $HOSTNAME is inside a container

    deadline = time.monotonic() + 60
    while run_shell(quick, HOSTNAME=hostname, **celery_worker).returncode != 0:
        assert time.monotonic() < deadline, "the worker never answered its healthcheck"
        time.sleep(0.5)
    result = run_shell(command, HOSTNAME=hostname, **celery_worker)
    assert result.returncode == 0, result.stderr

    other = run_shell(quick, HOSTNAME="some-other-container", **celery_worker)
    assert other.returncode != 0
    assert "No nodes replied" in other.stderr + other.stdout


# --- redis ------------------------------------------------------------------------------------


@pytest.fixture
def compose_redis(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """redis-server with the compose file's config and command-line password, on loopback."""
    password = "x" * 8 + "-generated-secret-like-env-setup"
    port = free_port()
    proc = subprocess.Popen(
        [
            *(str(binaries.require(binaries.redis_server())), str(ROOT / "infra/redis/redis.conf")),
            *("--requirepass", password, "--port", str(port), "--bind", "127.0.0.1"),
            *("--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "redis-server rejected infra/redis/redis.conf"
        yield port, password
    finally:
        proc.terminate()
        proc.wait(10)


def test_redis_runs_with_the_compose_config_and_its_healthcheck_authenticates(
    dev_config, compose_redis
):
    port, password = compose_redis
    # The container listens on 6379; here the port is a free one.
    command = healthcheck_shell(dev_config, "redis").replace("redis-cli", f"redis-cli -p {port}")
    cli_dir = str(Path(str(binaries.require(binaries.redis_server()))).parent)
    path = f"{cli_dir}{os.pathsep}{os.environ['PATH']}"

    assert run_shell(command, REDIS_PASSWORD=password, PATH=path).returncode == 0
    assert run_shell(command, REDIS_PASSWORD="wrong", PATH=path).returncode != 0

    import redis

    client = redis.Redis(port=port, password=password)
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    with pytest.raises(redis.ResponseError, match="unknown command"):
        client.execute_command("FLUSHALL")
    client.close()


# --- postgres ---------------------------------------------------------------------------------


def test_the_postgres_init_script_enables_pgvector(empty_database_url):
    url = empty_database_url.replace("postgresql+psycopg://", "postgresql://")
    scripts = sorted((ROOT / "infra/postgres/initdb").glob("*.sql"))
    assert scripts
    with psycopg.connect(url, autocommit=True) as conn:
        for script in scripts:
            conn.execute(script.read_text())  # type: ignore[call-overload]
        query = "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        row = conn.execute(query).fetchone()
    assert row is not None
