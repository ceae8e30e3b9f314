"""A service that crashes at start: `inv up` names it, shows its log, and stops nothing else's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mi_testing import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_crashing_service_is_named_with_the_tail_of_its_log(
    repo_root: Path, tmp_path: Path, make_inv
):
    for name in ("tasks.py", "pyproject.toml"):
        shutil.copy(repo_root / name, tmp_path / name)
    # A lock that pins no whisper model, so `inv up` has none to pull or check and whisper
    # itself meets the empty model directory (a pinned one would be refused before it starts).
    (tmp_path / "models.lock").write_text(
        'version = 1\n[envs]\nstaging = { ollama = "llama3.2:3b" }\n'
        '[ollama."llama3.2:3b"]\ndigest = "' + "a" * 64 + '"\n'
    )
    inv = make_inv(tmp_path, default_timeout=240)

    assert inv("env.setup", "--env", "staging").returncode == 0
    env_file = tmp_path / ".env.staging"
    overrides = {
        key: str(free_port())
        for key in (
            "BACKEND_PORT",
            "LLM_PORT",
            "WHISPER_PORT",
            "WHISPER_METRICS_PORT",
            "POSTGRES_PORT",
            "REDIS_PORT",
        )
    }
    # faster-whisper asked for explicitly, with no model: whisper exits at start.
    overrides |= {"WHISPER_ENGINE": "faster-whisper", "WHISPER_MODEL_DIR": str(tmp_path / "none")}
    lines = [
        f"{line.split('=', 1)[0]}={overrides[line.split('=', 1)[0]]}"
        if line.split("=", 1)[0] in overrides
        else line
        for line in env_file.read_text().splitlines()
    ]
    env_file.write_text("\n".join(lines) + "\n")

    try:
        result = inv("up", "--env", "staging", "--runtime", "local", "--timeout", "120")
        assert result.returncode == 1, result.stdout
        assert "whisper failed to start" in result.stderr
        assert "last lines of whisper's log" in result.stderr
        assert "inv models.pull" in result.stderr, "the log tail carries whisper's own advice"
        assert "inv logs --env staging --service whisper" in result.stderr
        ps = inv("ps", "--env", "staging", "--json")
        assert '"service": "postgres"' in ps.stdout, "what did start is still inspectable"
    finally:
        down = inv("down", "--env", "staging")
    assert down.returncode == 0, down.stderr
    assert "stopped the staging stack" in down.stdout
