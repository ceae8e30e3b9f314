"""The client the worker uses, against the real llm service (and a port nobody listens on)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llm_service.client import AnalysisRejectedError, LLMClient, LLMUnavailableError
from mi_testing import free_port


def test_analysis_comes_back_typed(llm_url: str) -> None:
    with LLMClient(llm_url, timeout=30) as client:
        result = client.analyze(
            "Alice will send the budget report by Friday. Bob will review the design.",
            language="en",
            reference_date=dt.date(2026, 12, 2),  # a Wednesday
        )
    assert result.engine == "extractive"
    alice = next(item for item in result.action_items if item.owner == "Alice")
    assert alice.due == "Friday"
    assert alice.due_date == dt.date(2026, 12, 4)


def test_a_rejected_transcript_is_permanent(llm_url: str) -> None:
    with (
        LLMClient(llm_url, timeout=30) as client,
        pytest.raises(AnalysisRejectedError, match="422"),
    ):
        client.analyze("   ")


def test_an_unreachable_service_is_transient() -> None:
    with (
        LLMClient(f"http://127.0.0.1:{free_port()}", timeout=5) as client,
        pytest.raises(LLMUnavailableError, match="unreachable"),
    ):
        client.analyze("text")


@pytest.fixture
def answering() -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    """An HTTP server answering /v1/analyze with the queued (status, body) replies."""
    replies: list[tuple[int, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            status, body = replies.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", replies
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (503, b'{"detail": "Ollama is unreachable"}', LLMUnavailableError, "503.*unreachable"),
        (429, b'{"detail": "slow down"}', LLMUnavailableError, "429"),
        (200, b'{"summary": "no items"}', AnalysisRejectedError, "not an analysis"),
        (200, b"<html>", AnalysisRejectedError, "not an analysis"),
    ],
)
def test_replies_are_classified(
    answering: tuple[str, list[tuple[int, bytes]]],
    status: int,
    body: bytes,
    error: type[Exception],
    match: str,
) -> None:
    url, replies = answering
    replies.append((status, body))
    with LLMClient(url, timeout=5) as client, pytest.raises(error, match=match):
        client.analyze("Alice will send the report.")
