"""`python -m llm_service` as the runtime starts it: a real uvicorn process on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from llm_service.__main__ import main

STARTUP_TIMEOUT = 30.0


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "OLLAMA_"))}
    env.update({"LOG_JSON": "true", "LOG_LEVEL": "INFO"}, **overrides)
    return env


@pytest.fixture
def run_service() -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(port: int, **env: str) -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "llm_service"],
            env=_env(LLM_HOST="127.0.0.1", LLM_PORT=str(port), **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"service exited early: {process.communicate()[1]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    return process, base
            except httpx.TransportError:
                time.sleep(0.1)
        pytest.fail("service did not answer /health in time")

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.mark.slow
def test_serves_analysis_health_and_metrics_then_stops_on_sigterm(
    run_service: Callable[..., tuple[subprocess.Popen[str], str]],
    port: int,
    dead_url: str,
    transcripts: dict[str, str],
) -> None:
    process, base = run_service(port, LLM_ENGINE="extractive", OLLAMA_URL=dead_url)
    with httpx.Client(base_url=base, timeout=10) as client:
        response = client.post("/v1/analyze", json={"text": transcripts["incident_review"]})
        assert response.status_code == 200
        body = response.json()
        assert body["engine"] == "extractive"
        assert any(item["owner"] == "Marcus" for item in body["action_items"])
        assert client.post("/v1/analyze", json={"text": " "}).status_code == 422
        assert client.get("/health/ready").status_code == 200
        metrics = client.get("/metrics").text
        assert (
            'http_requests_total{method="POST",route="/v1/analyze",service="llm",status="200"}'
            in (metrics)
        )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0  # a requested stop is a clean exit
    stderr = process.communicate()[1]
    assert '"service": "llm"' in stderr  # JSON logs, one object per line
    assert "Application shutdown complete" in stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_auto_finds_ollama_and_sigterm_lets_the_running_request_finish(
    run_service: Callable[..., tuple[subprocess.Popen[str], str]], port: int, fake_ollama: Any
) -> None:
    process, base = run_service(port, LLM_ENGINE="auto", OLLAMA_URL=fake_ollama.url)
    fake_ollama.default = lambda _request: fake_ollama.slow(1.5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(
            httpx.post, f"{base}/v1/analyze", json={"text": "Bob will fix it."}, timeout=15
        )
        deadline = time.monotonic() + 10
        while not fake_ollama.chat_requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_ollama.chat_requests, "the request reached Ollama"
        process.send_signal(signal.SIGTERM)  # while the request waits for the model
        response = pending.result()
    assert response.status_code == 200
    assert (response.json()["engine"], response.json()["model"]) == ("ollama", "llama3.2:3b")
    assert process.wait(timeout=15) == 0


def test_bad_config_is_one_clear_line_and_exit_code_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llm_service"],
        env=_env(LLM_PORT="eighty"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "llm: invalid configuration: LLM_PORT: Input should be a valid integer, unable to parse "
        "string as an integer (got 'eighty')"
    ]


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"LLM_PORT": "70000"}, "LLM_PORT"),
        ({"LLM_ENGINE": "gpt"}, "LLM_ENGINE"),
        ({"OLLAMA_URL": "localhost-11434"}, "OLLAMA_URL"),
        ({"OLLAMA_RETRIES": "-1"}, "OLLAMA_RETRIES"),
        ({"OLLAMA_TIMEOUT": "0"}, "OLLAMA_TIMEOUT"),
        ({"LLM_MAX_CHARS": "lots"}, "LLM_MAX_CHARS"),
    ],
)
def test_each_bad_key_is_named(
    env: dict[str, str],
    key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in os.environ:
        if name.startswith(("LLM_", "OLLAMA_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main() == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"llm: invalid configuration: {key}: ")
