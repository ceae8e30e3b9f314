"""The server's grpc.health.v1, as the Docker HEALTHCHECK (scripts/healthcheck.py), the
backend's readiness and `inv health` see it through the one probe, common.grpc_health."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common import grpc_health
from whisper_service import engines
from whisper_service.config import WhisperSettings
from whisper_service.server import GRPC_SERVICE_NAME, WhisperServer

HEALTHCHECK = Path(__file__).resolve().parents[3] / "scripts" / "healthcheck.py"


def run_probe(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The container HEALTHCHECK's command."""
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), "grpc", target, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_serving_server_passes(server: Any) -> None:
    assert grpc_health.check(server.target, timeout=3) == "SERVING"
    assert grpc_health.check(server.target, timeout=3, service=GRPC_SERVICE_NAME) == "SERVING"
    result = run_probe(server.target)
    assert (result.returncode, result.stderr) == (0, "")


def test_unknown_service_fails(server: Any) -> None:
    with pytest.raises(grpc_health.NotServingError, match="NOT_FOUND"):
        grpc_health.check(server.target, timeout=3, service="nope.v1.Nothing")
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
    with pytest.raises(grpc_health.NotServingError, match="NOT_SERVING"):
        grpc_health.check(target, timeout=3)
    result = run_probe(target)
    assert result.returncode == 1
    assert "NOT_SERVING" in result.stderr
