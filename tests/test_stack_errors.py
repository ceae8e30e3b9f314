"""Bad input to the stack tasks: each exits non-zero, says what to do, and loses nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from mi_testing import free_port


@pytest.fixture
def checkout(repo_root: Path, tmp_path: Path) -> Path:
    """A scratch repository root: ops finds the root by tasks.py next to pyproject.toml."""
    for name in ("tasks.py", "pyproject.toml"):
        shutil.copy(repo_root / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def inv(make_inv, checkout: Path):
    return make_inv(checkout)


def _set(env_file: Path, **values: str) -> None:
    lines = env_file.read_text().splitlines()
    for key, value in values.items():
        lines = [f"{key}={value}" if line.startswith(f"{key}=") else line for line in lines]
    env_file.write_text("\n".join(lines) + "\n")


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def test_unknown_env(inv):
    result = inv("up", "--env", "qa")
    assert result.returncode == 2
    assert "unknown environment 'qa'" in result.stderr and "dev, staging, prod" in result.stderr
    _no_traceback(result)


def test_unknown_runtime(inv, checkout):
    result = inv("up", "--env", "dev", "--runtime", "k8s")
    assert result.returncode == 2
    assert "unknown runtime 'k8s'" in result.stderr and "auto, local, compose" in result.stderr
    assert not (checkout / ".data").exists(), "nothing may be started or created"


def test_compose_without_an_engine_suggests_the_local_runtime(inv, monkeypatch, tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"
    )
    (fake / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    result = inv("up", "--env", "dev", "--runtime", "compose")
    assert result.returncode == 1
    assert "needs a Docker engine" in result.stderr and "--runtime local" in result.stderr


def test_staging_is_never_configured_implicitly(inv, checkout):
    result = inv("up", "--env", "staging", "--runtime", "local")
    assert result.returncode == 1
    assert "inv env.setup --env staging" in result.stderr
    assert not (checkout / ".env.staging").exists()


def test_a_malformed_env_line_is_reported_with_its_number(inv, checkout):
    assert inv("env.setup", "--env", "dev").returncode == 0
    env_file = checkout / ".env.dev"
    lines = env_file.read_text().splitlines()
    lines.insert(6, "BACKEND_PORT 8000")
    env_file.write_text("\n".join(lines) + "\n")
    before = env_file.read_text()

    result = inv("up", "--env", "dev", "--runtime", "local")
    assert result.returncode == 1
    assert "line 7: not KEY=VALUE: 'BACKEND_PORT 8000'" in result.stderr
    assert "inv env.check --env dev" in result.stderr
    assert env_file.read_text() == before, "the user's file is left as it was"
    assert not (checkout / ".data").exists()


def test_a_taken_port_is_named_with_the_key_to_change(inv, checkout):
    assert inv("env.setup", "--env", "dev").returncode == 0
    ports = {
        key: str(free_port())
        for key in (
            "BACKEND_PORT",
            "LLM_PORT",
            "WHISPER_PORT",
            "WHISPER_METRICS_PORT",
            "POSTGRES_PORT",
        )
    }
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        _set(checkout / ".env.dev", **ports, REDIS_PORT=str(taken))
        result = inv("up", "--env", "dev", "--runtime", "local")
    assert result.returncode == 1
    assert f"{taken} (REDIS_PORT)" in result.stderr
    assert "change REDIS_PORT in .env.dev" in result.stderr
    assert not (checkout / ".data" / "dev" / "postgres").exists(), "fails before initdb"


def test_down_on_a_stack_that_is_not_running(inv):
    result = inv("down", "--env", "dev", "--runtime", "local")
    assert result.returncode == 1
    assert "not running: nothing to stop" in result.stderr
    assert "inv up --env dev" in result.stderr


def test_down_volumes_needs_confirmation_and_keeps_data_without_it(inv, checkout):
    data = checkout / ".data" / "dev"
    data.mkdir(parents=True)
    (data / "precious").write_text("meeting audio")
    result = inv("down", "--env", "dev", "--runtime", "local", "--volumes")
    assert result.returncode == 1
    assert "pass --yes to confirm" in result.stderr
    assert (data / "precious").read_text() == "meeting audio"

    result = inv("down", "--env", "dev", "--runtime", "local", "--volumes", "--yes")
    assert result.returncode == 0, result.stderr
    assert not data.exists()


def test_health_without_an_env_file_says_how_to_make_one(inv):
    result = inv("health", "--env", "staging")
    assert result.returncode == 1
    assert "inv env.setup --env staging" in result.stderr
    _no_traceback(result)
