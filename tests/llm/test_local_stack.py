"""`inv up` with LLM_ENGINE=local on a clean checkout: llama.cpp runs under supervisord next to
the other services, health-checked, and the stack's meetings are analysed by it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def stack(
    make_checkout: Any, make_inv: Any, pulled_models: dict[str, Path]
) -> Iterator[tuple[Any, dict[str, str]]]:
    checkout: Path = make_checkout("local-llm")
    inv = make_inv(checkout, default_timeout=420)
    assert inv("env.setup", "--env", "dev").returncode == 0
    env_file = checkout / ".env.dev"
    # The models `nox -s llm` pulled into this repository: no second 1.1 GB in the checkout.
    overrides = {
        "LLM_ENGINE": "local",
        "LLM_MODEL_DIR": str(pulled_models["llm"]),
        "EMBEDDINGS_MODEL_DIR": str(pulled_models["embeddings"]),
        "WHISPER_ENGINE": "pocketsphinx",
    }
    lines = [
        line for line in env_file.read_text().splitlines() if line.split("=")[0] not in overrides
    ]
    env_file.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in overrides.items())]) + "\n")
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    up = inv("up", "--env", "dev", "--runtime", "local", "--timeout", "300")
    try:
        assert up.returncode == 0, f"inv up failed:\n{up.stdout}\n{up.stderr}"
        yield inv, values
    finally:
        inv("down", "--env", "dev")


def test_llama_runs_supervised_and_healthy_and_analyses_the_meeting(
    stack: tuple[Any, dict[str, str]], spoken_meeting: Any
) -> None:
    inv, values = stack
    ps = {row["service"]: row for row in json.loads(inv("ps", "--env", "dev", "--json").stdout)}
    assert ps["llama"]["state"] == "running", ps
    health = inv("health", "--env", "dev", "--json")
    assert health.returncode == 0, health.stdout + health.stderr
    checks = json.loads(health.stdout)["checks"]
    assert checks["llama"]["ok"] is True and checks["llama"]["required"] is True

    base = f"http://{values['BACKEND_HOST']}:{values['BACKEND_PORT']}"
    meeting = spoken_meeting.upload_and_wait(base, values["API_TOKEN"], timeout=420)
    spoken_meeting.assert_analysed(meeting)
    log = inv("logs", "--env", "dev", "--service", "worker", "--tail", "200").stdout
    assert "(local)" in log, log[-2000:]  # "analyzed meeting …: 2 action item(s) (local)"
