"""scripts/healthcheck.py, run the way Docker runs a HEALTHCHECK: a subprocess whose exit status
is the verdict, against real HTTP and gRPC servers on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

PROBE = Path(__file__).resolve().parents[2] / "scripts" / "healthcheck.py"


def probe(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROBE), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **env},
    )


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = {"/health": 200, "/broken": 503}.get(self.path, 404)
        body = b'{"status": "ok"}' if code == 200 else b'{"status": "fail"}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def grpc_health() -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, servicer
    server.stop(grace=None).wait(5)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_http_2xx_is_healthy(http_port):
    result = probe("http", f"http://127.0.0.1:{http_port}/health")
    assert (result.returncode, result.stderr) == (0, "")


def test_http_5xx_is_unhealthy_and_says_the_status(http_port):
    result = probe("http", f"http://127.0.0.1:{http_port}/broken")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"unhealthy: http://127.0.0.1:{http_port}/broken answered 503 Service Unavailable"
    )


def test_http_nothing_listening_is_unhealthy_in_one_line(closed_port):
    result = probe("http", f"http://127.0.0.1:{closed_port}/health", "--timeout", "2")
    assert result.returncode == 1
    assert result.stderr.startswith(f"unhealthy: http://127.0.0.1:{closed_port}/health unreachable")
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_the_url_follows_the_containers_port_variable(http_port):
    # Exec-form HEALTHCHECKs have no shell: the probe expands ${BACKEND_PORT} itself.
    result = probe("http", "http://127.0.0.1:${BACKEND_PORT}/health", BACKEND_PORT=str(http_port))
    assert result.returncode == 0, result.stderr


def test_an_unset_port_variable_is_a_one_line_failure():
    env = {k: v for k, v in os.environ.items() if k != "BACKEND_PORT"}
    result = subprocess.run(
        [sys.executable, str(PROBE), "http", "http://127.0.0.1:${BACKEND_PORT}/health"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "unhealthy: http://127.0.0.1:${BACKEND_PORT}/health names an environment variable "
        "that is not set\n"
    )


def test_a_non_numeric_port_is_a_one_line_failure():
    result = probe("http", "http://127.0.0.1:eighty/health")
    assert result.returncode == 1
    assert result.stderr.startswith("unhealthy: http://127.0.0.1:eighty/health: ")
    assert "Traceback" not in result.stderr


def test_grpc_serving_is_healthy_and_not_serving_is_not(grpc_health):
    port, servicer = grpc_health
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert probe("grpc", f"127.0.0.1:{port}").returncode == 0

    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    result = probe("grpc", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.strip() == f"unhealthy: 127.0.0.1:{port}: gRPC health is NOT_SERVING"


def test_grpc_checks_a_named_service(grpc_health):
    port, servicer = grpc_health
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("whisper.v1.Transcriber", health_pb2.HealthCheckResponse.SERVING)
    assert probe("grpc", f"127.0.0.1:{port}", "--service", "whisper.v1.Transcriber").returncode == 0

    result = probe("grpc", f"127.0.0.1:{port}", "--service", "nope.v1.Missing")
    assert result.returncode == 1
    assert "NOT_FOUND" in result.stderr


def test_grpc_nothing_listening_is_unhealthy(closed_port):
    target = "127.0.0.1:${WHISPER_PORT}"
    result = probe("grpc", target, "--timeout", "1", WHISPER_PORT=str(closed_port))
    assert result.returncode == 1
    assert result.stderr.startswith(f"unhealthy: 127.0.0.1:{closed_port}: ")
    assert "UNAVAILABLE" in result.stderr or "DEADLINE_EXCEEDED" in result.stderr
