"""Fixtures for the llm service tests: transcripts, a scriptable fake Ollama, free ports.

The fake Ollama is a real HTTP server on loopback speaking Ollama's wire protocol
(GET /api/tags, POST /api/chat with `stream: false` and a JSON-schema `format`), so the
service's client code runs unchanged against it. Each test scripts its replies.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def transcripts() -> dict[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in FIXTURES.glob("*.txt")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()


@dataclass
class Reply:
    """One scripted answer of the fake: HTTP status, JSON body (or raw text), delay."""

    status: int = 200
    body: Any = None
    delay: float = 0.0


ChatHandler = Callable[[dict[str, Any]], Reply]


@dataclass
class FakeOllama:
    models: list[str] = field(default_factory=lambda: ["llama3.2:3b"])
    url: str = ""
    chat_requests: list[dict[str, Any]] = field(default_factory=list)
    tags_requests: int = 0
    script: list[Reply | ChatHandler] = field(default_factory=list)
    default: ChatHandler | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def chat_envelope(content: str, model: str = "llama3.2:3b") -> dict[str, Any]:
        """A finished non-streaming /api/chat response as Ollama sends it."""
        return {
            "model": model,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message": {"role": "assistant", "content": content},
            "done_reason": "stop",
            "done": True,
            "total_duration": 5_191_566_416,
            "load_duration": 2_154_458,
            "prompt_eval_count": 26,
            "prompt_eval_duration": 383_809_000,
            "eval_count": 298,
            "eval_duration": 4_799_921_000,
        }

    @classmethod
    def analysis(
        cls,
        summary: str = "The team agreed on the plan.",
        action_items: list[dict[str, Any]] | None = None,
        topics: list[str] | None = None,
    ) -> Reply:
        content = {
            "summary": summary,
            "action_items": action_items or [],
            "topics": topics or ["plan"],
        }
        return Reply(body=cls.chat_envelope(json.dumps(content)))

    @classmethod
    def content(cls, raw: str) -> Reply:
        """A well-formed envelope whose message.content is `raw`, valid or not."""
        return Reply(body=cls.chat_envelope(raw))

    @classmethod
    def slow(cls, seconds: float) -> Reply:
        """A valid reply that arrives only after `seconds`."""
        return Reply(body=cls.analysis().body, delay=seconds)

    @staticmethod
    def failure(status: int, error: str) -> Reply:
        """An error as Ollama reports it: a status and {"error": message}."""
        return Reply(status=status, body={"error": error})

    def enqueue(self, *replies: Reply | ChatHandler) -> None:
        with self.lock:
            self.script.extend(replies)

    def next_reply(self, request: dict[str, Any]) -> Reply:
        with self.lock:
            self.chat_requests.append(request)
            scripted = self.script.pop(0) if self.script else None
        if scripted is None:
            scripted = self.default or (lambda _request: self.analysis())
        return scripted(request) if callable(scripted) else scripted

    def tags(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": name,
                    "model": name,
                    "modified_at": "2025-10-03T23:34:03.409490317-07:00",
                    "size": 2019393189,
                    "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                    "details": {
                        "format": "gguf",
                        "family": "llama",
                        "families": ["llama"],
                        "parameter_size": "3.2B",
                        "quantization_level": "Q4_K_M",
                    },
                }
                for name in self.models
            ]
        }


def _handler(fake: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx's pool expects

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test); nothing to deliver

        def do_GET(self) -> None:
            if self.path == "/api/tags":
                with fake.lock:
                    fake.tags_requests += 1
                self._send(200, fake.tags())
            elif self.path == "/":
                self._send(200, "Ollama is running")
            else:
                self._send(404, "404 page not found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            request = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/api/chat":
                self._send(404, "404 page not found")
                return
            if request.get("model") not in fake.models:
                model = request.get("model")
                self._send(404, {"error": f"model '{model}' not found, try pulling it first"})
                return
            reply = fake.next_reply(request)
            if reply.delay and fake.stopping.wait(reply.delay):
                return
            self._send(reply.status, reply.body)

    return Handler


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-ollama", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()  # wakes handlers sleeping in a scripted delay
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens: connection refused, immediately."""
    return f"http://127.0.0.1:{free_port()}"


# --- a fake OpenAI-compatible server ------------------------------------------------------------


@dataclass
class FakeOpenAI:
    """Speaks `GET /v1/models` and `POST /v1/chat/completions` as OpenAI-compatible servers do;
    each test scripts the replies. `reject_modes` answers 400 for those response_format types,
    the way servers without structured output refuse them."""

    models: list[str] = field(default_factory=lambda: ["qwen-test"])
    api_key: str = ""
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    script: list[Reply | ChatHandler] = field(default_factory=list)
    default: ChatHandler | None = None
    reject_modes: set[str] = field(default_factory=set)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def completion(content: str, finish_reason: str = "stop") -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1764680000,
            "model": "qwen-test",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        }

    @classmethod
    def reply(cls, content: Any, finish_reason: str = "stop") -> Reply:
        text = content if isinstance(content, str) else json.dumps(content)
        return Reply(body=cls.completion(text, finish_reason))

    @classmethod
    def slow(cls, seconds: float) -> Reply:
        return Reply(body=cls.completion("{}"), delay=seconds)

    def enqueue(self, *replies: Reply | ChatHandler) -> None:
        with self.lock:
            self.script.extend(replies)

    def next_reply(self, request: dict[str, Any]) -> Reply:
        with self.lock:
            scripted = self.script.pop(0) if self.script else None
        if scripted is None:
            scripted = self.default or (
                lambda _r: self.reply({"summary": "ok", "action_items": [], "topics": []})
            )
        return scripted(request) if callable(scripted) else scripted


def _openai_handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _authorized(self) -> bool:
            if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                self._send(
                    401,
                    {
                        "error": {
                            "message": "Incorrect API key provided",
                            "type": "invalid_request_error",
                        }
                    },
                )
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path == "/v1/models":
                self._send(
                    200,
                    {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]},
                )
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            request = json.loads(self.rfile.read(length) or b"{}")
            if not self._authorized():
                return
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found"}})
                return
            with fake.lock:
                fake.requests.append(request)
                fake.headers.append(dict(self.headers))
            mode = (request.get("response_format") or {}).get("type")
            if mode in fake.reject_modes:
                self._send(
                    400,
                    {
                        "error": {
                            "message": f"response_format type {mode} is not supported",
                            "type": "invalid_request_error",
                        }
                    },
                )
                return
            reply = fake.next_reply(request)
            if reply.delay and fake.stopping.wait(reply.delay):
                return
            self._send(reply.status, reply.body)

    return Handler


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _openai_handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
