"""`inv up --env dev` on a clean checkout, used like a user would, then torn down.

Runs in the `e2e` nox session (marker `e2e`): it starts the whole stack (Postgres, Redis,
whisper, llm, backend, worker under supervisord) on the dev ports.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def checkout(make_checkout) -> Path:
    return make_checkout("checkout")


@pytest.fixture(scope="module")
def inv(make_inv, checkout: Path):
    return make_inv(checkout, default_timeout=300)


def _ps(inv) -> dict[str, dict]:
    result = inv("ps", "--env", "dev", "--json")
    assert result.returncode == 0, result.stderr
    return {row["service"]: row for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def stack(inv, checkout: Path) -> Iterator[dict[str, str]]:
    result = inv("up", "--env", "dev", "--runtime", "local", "--timeout", "240")
    try:
        assert result.returncode == 0, f"inv up failed:\n{result.stdout}\n{result.stderr}"
        assert "created .env.dev" in result.stdout
        assert "API token: API_TOKEN in" in result.stdout
        env_file = checkout / ".env.dev"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        values = dict(
            line.split("=", 1)
            for line in env_file.read_text().splitlines()
            if line and not line.startswith("#")
        )
        yield values
    finally:
        pids = (
            [int(r["ident"]) for r in _ps(inv).values() if r["ident"]]
            if result.returncode == 0
            else []
        )
        down = inv("down", "--env", "dev")
        assert down.returncode == 0 or "not running" in down.stderr, down.stderr
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def test_upload_is_transcribed_and_analysed(stack, spoken_meeting):
    base = f"http://{stack['BACKEND_HOST']}:{stack['BACKEND_PORT']}"
    listed = httpx.get(
        f"{base}/api/v1/meetings", headers={"Authorization": f"Bearer {stack['API_TOKEN']}"}
    )
    assert listed.status_code == 200
    meeting = spoken_meeting.upload_and_wait(base, stack["API_TOKEN"], timeout=180)
    spoken_meeting.assert_analysed(meeting)


def test_health_passes_on_the_running_stack(stack, inv):
    result = inv("health", "--env", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("postgres", "redis", "backend", "whisper", "llm", "worker"):
        assert check in result.stdout


def test_a_killed_worker_is_restarted_and_healthy_again(stack, inv):
    before = int(_ps(inv)["worker"]["ident"])
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = _ps(inv)["worker"]
        if row["state"] == "running" and row["ident"] and int(row["ident"]) != before:
            break
        time.sleep(0.5)
    else:
        pytest.fail("supervisord did not restart the killed worker")
    result = inv("health", "--env", "dev", "--wait", "60")
    assert result.returncode == 0, result.stdout + result.stderr


def test_up_again_changes_nothing(stack, inv):
    pids = {name: row["ident"] for name, row in _ps(inv).items()}
    result = inv("up", "--env", "dev", "--runtime", "local")
    assert result.returncode == 0, result.stderr
    assert "already running and healthy; nothing changed" in result.stdout
    assert {name: row["ident"] for name, row in _ps(inv).items()} == pids
