"""`python -m backend` as supervisord and the Dockerfile run it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mi_testing import free_port, subprocess_env, wait_for


@pytest.mark.slow
def test_serves_and_stops_on_sigterm(
    database_url: str, redis_url: str, media_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = subprocess_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        API_TOKEN="entrypoint-token-0123456789",
        MEDIA_DIR=str(media_dir),
        BACKEND_HOST="127.0.0.1",
        BACKEND_PORT=str(port),
        LOG_JSON="true",
    )
    log = tmp_path / "backend.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:

            def healthy() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
                except httpx.TransportError:
                    return process.poll() is not None  # stop waiting if it died

            wait_for(healthy, timeout=30, what="python -m backend to serve /health")
            assert process.poll() is None, log.read_text()
            reply = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/meetings",
                headers={"Authorization": "Bearer entrypoint-token-0123456789"},
            )
            assert reply.status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log.read_text()
    assert '"service": "backend"' in output  # JSON logs, one format for app and uvicorn
    assert "Finished server process" in output  # graceful: lifespan shutdown ran
