"""The real llm service (`python -m llm_service`, extractive) in staging: the service
credential on every path but health and metrics, docs off in prod, and the request size
checked before the body is read."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from common import service_auth
from mi_testing import services

TOKEN = "staging-service-token-0123456789abcdef"
MEETING = {"text": "Alice will send the budget report by Friday."}


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with services.llm(
        tmp_path_factory.mktemp("staging"),
        APP_ENV="staging",
        SERVICE_TOKEN=TOKEN,
        LLM_MAX_REQUEST_MB="0.5",
    ) as url:
        yield url


@pytest.mark.parametrize("headers", [{}, {service_auth.HEADER: "not-the-token"}])
@pytest.mark.parametrize("path", ["/v1/analyze", "/v1/embed", "/docs", "/openapi.json"])
def test_no_credential_no_answer(staging: str, headers: dict[str, str], path: str) -> None:
    reply = httpx.request(
        "POST" if path.startswith("/v1") else "GET",
        staging + path,
        json=MEETING,
        headers=headers,
        timeout=10,
    )
    assert reply.status_code == 401
    assert "SERVICE_TOKEN" in reply.json()["detail"]


def test_the_credential_opens_every_path(staging: str) -> None:
    headers = {service_auth.HEADER: TOKEN}
    reply = httpx.post(f"{staging}/v1/analyze", json=MEETING, headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["action_items"][0]["owner"] == "Alice"
    assert httpx.get(f"{staging}/docs", headers=headers, timeout=10).status_code == 200


def test_health_and_metrics_stay_open_for_probes(staging: str) -> None:
    for path in ("/health", "/health/ready", "/metrics"):
        assert httpx.get(staging + path, timeout=10).status_code == 200, path


def test_an_oversized_body_is_refused_by_its_length_before_it_is_read(staging: str) -> None:
    """A client announcing 2 MB gets 413 at once: the server never waits for the bytes."""
    host, port = urlsplit(staging).hostname, urlsplit(staging).port
    assert host and port
    with socket.create_connection((host, port), timeout=10) as sock:
        head = (
            "POST /v1/analyze HTTP/1.1\r\nHost: llm\r\nContent-Type: application/json\r\n"
            f"{service_auth.HEADER}: {TOKEN}\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"text": "')
        answer = b""
        while b"LLM_MAX_REQUEST_MB" not in answer:  # the answer may come in several packets
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    answer_text = answer.decode()
    assert answer_text.startswith("HTTP/1.1 413"), answer_text
    assert "LLM_MAX_REQUEST_MB" in answer_text


def test_an_oversized_body_without_a_length_is_cut_off(staging: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(64):
            yield b"a" * 16_384  # 1 MB in all, sent chunked
        yield b'"}'

    reply = httpx.post(
        f"{staging}/v1/analyze",
        content=chunks(),
        headers={service_auth.HEADER: TOKEN, "content-type": "application/json"},
        timeout=30,
    )
    assert reply.status_code == 413
    assert "shorter transcript" in reply.json()["detail"]


def test_prod_serves_no_docs(tmp_path: Path) -> None:
    with services.llm(tmp_path, APP_ENV="prod", SERVICE_TOKEN=TOKEN) as url:
        headers = {service_auth.HEADER: TOKEN}
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert httpx.get(url + path, headers=headers, timeout=10).status_code == 404
        reply = httpx.post(f"{url}/v1/analyze", json=MEETING, headers=headers, timeout=30)
        assert reply.status_code == 200
