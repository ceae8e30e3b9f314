"""Our own services as real subprocesses on loopback, started the way supervisord runs them."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from common import grpc_health
from mi_testing.processes import ServiceProcess, free_port, subprocess_env


def whisper_model_dir() -> Path:
    """Where the tests find a real faster-whisper model (it may not be there)."""
    configured = os.environ.get("WHISPER_TEST_MODEL_DIR")
    if configured:
        return Path(configured)
    from ops import project

    return project.root() / ".models" / "dev" / "whisper"


def grpc_serving(target: str) -> bool:
    try:
        grpc_health.check(target, timeout=1)
    except grpc_health.NotServingError:
        return False
    return True


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def whisper(log_dir: Path, **env: str) -> Iterator[str]:
    """`python -m whisper_service` (pocketsphinx unless `env` says otherwise); yields host:port."""
    port = free_port()
    target = f"127.0.0.1:{port}"
    settings = {
        "WHISPER_HOST": "127.0.0.1",
        "WHISPER_PORT": str(port),
        "WHISPER_METRICS_PORT": str(free_port()),
        "WHISPER_ENGINE": "pocketsphinx",
        "WHISPER_WORKERS": "2",
        "LOG_JSON": "false",
        **env,
    }
    service = ServiceProcess(
        [sys.executable, "-m", "whisper_service"],
        subprocess_env(**settings),
        log_dir / "whisper.log",
    ).start()
    try:
        service.wait_until(lambda: grpc_serving(target), timeout=120, what="whisper SERVING")
        yield target
    finally:
        service.stop()


@contextlib.contextmanager
def llm(log_dir: Path, **env: str) -> Iterator[str]:
    """`python -m llm_service` (the offline extractive engine unless `env` says otherwise);
    yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {
        "LLM_HOST": "127.0.0.1",
        "LLM_PORT": str(port),
        "LLM_ENGINE": "extractive",
        "LOG_JSON": "false",
        **env,
    }
    service = ServiceProcess(
        [sys.executable, "-m", "llm_service"], subprocess_env(**settings), log_dir / "llm.log"
    ).start()
    try:
        service.wait_until(lambda: http_ok(f"{url}/health"), timeout=60, what="llm /health")
        yield url
    finally:
        service.stop()
