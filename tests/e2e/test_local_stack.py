"""`inv up --env dev` on a clean checkout, used like a user would, then torn down.

Runs in the `e2e` nox session (marker `e2e`): it starts the whole stack (Postgres, Redis,
whisper, llm, backend, worker under supervisord) on the dev ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

SPEECH = "Alice will send the budget report by Friday. Bob will review the design document."
KEYWORDS = ("budget", "report", "friday", "review", "design", "document")


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


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("text2wave") is None:
        pytest.fail(
            "festival's text2wave is needed for spoken test audio: apt-get install festival"
        )
    out = tmp_path_factory.mktemp("audio") / "meeting.wav"
    subprocess.run(["text2wave", "-o", str(out)], input=SPEECH, text=True, check=True)
    return out


def test_upload_is_transcribed_and_analysed(stack, speech):
    base = f"http://{stack['BACKEND_HOST']}:{stack['BACKEND_PORT']}"
    headers = {"Authorization": f"Bearer {stack['API_TOKEN']}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        assert client.get("/api/v1/meetings").status_code == 200
        assert httpx.get(f"{base}/api/v1/meetings").status_code == 401, "the token is required"
        with speech.open("rb") as fh:
            created = client.post(
                "/api/v1/meetings",
                files={"file": ("meeting.wav", fh, "audio/wav")},
                data={"title": "budget sync"},
            )
        assert created.status_code == 202, created.text
        meeting_id = created.json()["id"]

        deadline = time.monotonic() + 180
        while True:
            meeting = client.get(f"/api/v1/meetings/{meeting_id}").json()
            if meeting["status"] in {"done", "failed"} or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert meeting["status"] == "done", meeting
    text = meeting["transcript"]["text"].lower()
    heard = [word for word in KEYWORDS if word in text]
    assert len(heard) >= 4, f"transcript {text!r} holds only {heard}"
    assert meeting["transcript"]["segments"]
    assert meeting["summary"]
    assert meeting["action_items"], meeting
    assert any("alice" in (item.get("owner") or "").lower() for item in meeting["action_items"])


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
