"""Every service's `python -m <service>` starts the same way (common.entrypoint): a refused
configuration is one line on stderr naming each bad key, exit status 2, before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mi_testing import subprocess_env

# (module, service name, bad settings, keys the line must name, a key that must be unset)
CASES = [
    (
        "backend",
        "backend",
        {"API_TOKEN": "short", "REDIS_URL": "http://nope", "BACKEND_PORT": "99999"},
        ["DATABASE_URL is not set", "API_TOKEN", "REDIS_URL", "BACKEND_PORT"],
        "DATABASE_URL",
    ),
    (
        "worker",
        "worker",
        {"WORKER_QUEUES": "nope", "REDIS_URL": "redis://127.0.0.1:1/0"},
        ["DATABASE_URL is not set", "WORKER_QUEUES"],
        "DATABASE_URL",
    ),
    ("whisper_service", "whisper", {"WHISPER_PORT": "70000"}, ["WHISPER_PORT"], ""),
    ("llm_service", "llm", {"LLM_ENGINE": "gpt"}, ["LLM_ENGINE"], ""),
]


@pytest.mark.parametrize(("module", "service", "bad", "named", "unset"), CASES)
def test_a_refused_configuration_is_one_line_and_exit_2(
    tmp_path: Path, module: str, service: str, bad: dict[str, str], named: list[str], unset: str
) -> None:
    env = subprocess_env(**bad)
    env.pop(unset, None)
    result = subprocess.run(
        [sys.executable, "-m", module],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{service}: invalid configuration: ")
    for key in named:
        assert key in lines[0]


def test_a_rejected_secret_is_never_echoed(tmp_path: Path) -> None:
    env = subprocess_env(API_TOKEN="short-secret1", DATABASE_URL="mysql://u:hunter2@db/x")
    result = subprocess.run(
        [sys.executable, "-m", "backend"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert "API_TOKEN" in result.stderr and "DATABASE_URL" in result.stderr
    assert "short-secret1" not in result.stderr and "hunter2" not in result.stderr
