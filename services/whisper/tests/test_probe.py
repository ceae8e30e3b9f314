"""The health probe the Docker HEALTHCHECK runs: exit 0 when SERVING, 1 otherwise."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from whisper_service import engines, probe
from whisper_service.config import WhisperSettings
from whisper_service.server import SERVICE_NAME, WhisperServer


def run_probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whisper_service.probe", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_serving_server_passes(server: Any) -> None:
    assert probe.check(server.target)
    assert probe.check(server.target, service=SERVICE_NAME)
    result = run_probe(server.target)
    assert result.returncode == 0
    assert result.stdout.strip() == f"{server.target}: SERVING"


def test_nothing_listening_fails(helpers: type) -> None:
    target = f"127.0.0.1:{helpers.free_port()}"
    assert not probe.check(target, timeout=1)
    result = run_probe(target, "--timeout", "1")
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stdout


def test_unknown_service_fails(server: Any) -> None:
    assert probe.status(server.target, service="nope.v1.Nothing").startswith("NOT_FOUND")
    assert run_probe(server.target, "--service", "nope.v1.Nothing").returncode == 1


@pytest.fixture
def loading_server() -> Iterator[WhisperServer]:
    gate = threading.Event()

    def loader(settings: WhisperSettings) -> engines.Engine:
        gate.wait(30)
        return engines.load(settings)

    server = WhisperServer(
        WhisperSettings(port=0, metrics_port=0, engine="pocketsphinx", workers=1),  # type: ignore[call-arg]
        loader=loader,
    )
    server.start()
    loading = threading.Thread(target=server.load_engine, daemon=True)
    loading.start()
    try:
        yield server
    finally:
        gate.set()
        loading.join(30)
        server.stop(0)


def test_loading_server_fails_until_ready(loading_server: WhisperServer) -> None:
    target = f"127.0.0.1:{loading_server.port}"
    assert probe.status(target) == "NOT_SERVING"
    result = run_probe(target)
    assert result.returncode == 1
    assert result.stdout.strip() == f"{target}: NOT_SERVING"
