"""`python -m whisper_service` with bad settings: one clear line and exit code 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.settings import describe_config_error
from whisper_service.config import WhisperSettings


def run_main(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whisper_service"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("WHISPER_PORT", "not-a-port"),
        ("WHISPER_PORT", "70000"),
        ("WHISPER_ENGINE", "whisper.cpp"),
        ("WHISPER_DEVICE", "tpu"),
        ("WHISPER_WORKERS", "0"),
        ("WHISPER_MAX_AUDIO_SECONDS", "-5"),
        ("WHISPER_COMPUTE_TYPE", "int3"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_setting_exits_2_with_one_line(key: str, value: str, helpers: type) -> None:
    result = run_main(helpers.server_env(**{key: value}))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("whisper: invalid configuration:")
    assert key in lines[0]
    assert value in lines[0]


def test_missing_model_exits_2_naming_models_pull(tmp_path: Path, helpers: type) -> None:
    missing = tmp_path / "no-model"
    result = run_main(
        helpers.server_env(WHISPER_ENGINE="faster-whisper", WHISPER_MODEL_DIR=str(missing))
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("whisper: no whisper model in")
    assert "inv models.pull" in last


def test_port_in_use_exits_1_saying_so(helpers: type) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_main(helpers.server_env(WHISPER_METRICS_PORT=str(port)))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert f"cannot serve metrics on 127.0.0.1:{port} (WHISPER_METRICS_PORT)" in last


def test_settings_read_the_documented_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_HOST", "localhost")
    monkeypatch.setenv("WHISPER_PORT", "50999")
    monkeypatch.setenv("WHISPER_MODEL_DIR", "/models/whisper")
    monkeypatch.setenv("WHISPER_MAX_MESSAGE_MB", "2")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    s = WhisperSettings()
    assert (s.host, s.port, s.model_dir, s.log_level) == (
        "localhost",
        50999,
        Path("/models/whisper"),
        "DEBUG",
    )
    assert s.max_message_bytes == 2 * 1024 * 1024


def test_validation_error_is_described_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_PORT", "abc")
    monkeypatch.setenv("WHISPER_ENGINE", "nope")
    with pytest.raises(ValidationError) as info:
        WhisperSettings()
    line = describe_config_error(info.value)
    assert "\n" not in line
    assert "WHISPER_PORT" in line
    assert "WHISPER_ENGINE" in line
