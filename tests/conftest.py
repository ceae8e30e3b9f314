"""Fixtures for the cross-service tests: the repository, scratch checkouts of it, and running
`inv` in either the way a user does (a subprocess with the workspace's interpreter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
Inv = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def copy_checkout(repo_root: Path, into: Path) -> Path:
    """The working tree as git sees it (tracked and new files, nothing ignored): a clean
    checkout, without the user's .env files, .data/, backups/ or .models/."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = repo_root / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


@pytest.fixture(scope="session")
def make_checkout(repo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """`make_checkout(name)`: a fresh scratch checkout of the working tree."""

    def make(name: str = "checkout") -> Path:
        return copy_checkout(repo_root, tmp_path_factory.mktemp(name))

    return make


def inv_runner(cwd: Path, default_timeout: float = 120) -> Inv:
    """`run(*args, timeout=, **env)`: `inv ARGS...` in `cwd`, never waiting for a keyboard."""
    uv_dir = str(Path(shutil.which("uv") or "/usr/bin/uv").parent)

    def run(
        *args: str, timeout: float = default_timeout, **env: str
    ) -> subprocess.CompletedProcess[str]:
        full_env = {
            **os.environ,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), uv_dir, os.environ["PATH"]]),
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def make_inv() -> Callable[..., Inv]:
    """`make_inv(cwd)`: an `inv` runner for a scratch checkout."""
    return inv_runner


@pytest.fixture
def run_inv() -> Inv:
    """Run `inv ARGS...` in the repository itself."""
    return inv_runner(ROOT)


@dataclass(frozen=True)
class SpokenMeeting:
    """A recording festival speaks, and how to send it through a running stack's API."""

    audio: Path
    text = "Alice will send the budget report by Friday. Bob will review the design document."
    keywords = ("budget", "report", "friday", "review", "design", "document")

    def upload_and_wait(self, base: str, token: str, timeout: float) -> dict[str, Any]:
        """POST the recording with the token; poll until done or failed (or `timeout`)."""
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            assert httpx.get(f"{base}/api/v1/meetings").status_code == 401, "the token is required"
            with self.audio.open("rb") as fh:
                created = client.post(
                    "/api/v1/meetings",
                    files={"file": ("meeting.wav", fh, "audio/wav")},
                    data={"title": "budget sync"},
                )
            assert created.status_code == 202, created.text
            meeting_id = created.json()["id"]
            deadline = time.monotonic() + timeout
            while True:
                reply = client.get(f"/api/v1/meetings/{meeting_id}")
                assert reply.status_code == 200, f"GET meeting: {reply.status_code} {reply.text}"
                meeting: dict[str, Any] = reply.json()
                if meeting["status"] in {"done", "failed"} or time.monotonic() > deadline:
                    return meeting
                time.sleep(1)

    def assert_analysed(self, meeting: dict[str, Any]) -> None:
        """Transcribed (most spoken words heard), summarised, Alice's action item found."""
        assert meeting["status"] == "done", meeting
        text = meeting["transcript"]["text"].lower()
        heard = [word for word in self.keywords if word in text]
        assert len(heard) >= 4, f"transcript {text!r} holds only {heard}"
        assert meeting["transcript"]["segments"]
        assert meeting["summary"]
        assert meeting["action_items"], meeting
        owners = [(item.get("owner") or "").lower() for item in meeting["action_items"]]
        assert any("alice" in owner for owner in owners)


@pytest.fixture(scope="session")
def spoken_meeting(tmp_path_factory: pytest.TempPathFactory) -> SpokenMeeting:
    if shutil.which("text2wave") is None:
        pytest.fail(
            "festival's text2wave is needed for spoken test audio: apt-get install festival"
        )
    out = tmp_path_factory.mktemp("audio") / "meeting.wav"
    subprocess.run(["text2wave", "-o", str(out)], input=SpokenMeeting.text, text=True, check=True)
    return SpokenMeeting(out)
