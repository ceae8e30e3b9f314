"""/health/ready against real dependencies: each one reported with status and latency."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import httpx
import pytest
from grpc import server as grpc_server
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from backend.config import BackendSettings
from backend.main import create_app
from mi_testing import ApiServer, free_port
from mi_testing.stores import RedisServer

AUTH = {"Authorization": "Bearer test-token-0123456789abcdef"}  # conftest's API_TOKEN


class HealthOnlyGrpcServer:
    """A real gRPC server exposing only grpc.health.v1, standing in for whisper here (the
    pipeline tests run the real whisper service)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.health = health.HealthServicer()
        self.server = grpc_server(futures.ThreadPoolExecutor(max_workers=2))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")

    def set(self, status: int) -> None:
        self.health.set("", status)


@pytest.fixture
def grpc_health_server() -> Iterator[HealthOnlyGrpcServer]:
    server = HealthOnlyGrpcServer()
    server.server.start()
    yield server
    server.server.stop(grace=None)


def test_ready_reports_each_dependency(
    client: httpx.Client, settings: BackendSettings, grpc_health_server: HealthOnlyGrpcServer
) -> None:
    # the default settings point whisper and llm at closed ports: optional, so still 200
    reply = client.get("/health/ready")
    assert reply.status_code == 200
    checks = reply.json()["checks"]
    assert set(checks) == {"database", "redis", "whisper", "llm", "media"}
    assert checks["media"]["ok"] and not checks["media"]["required"]
    assert checks["database"]["ok"] and checks["redis"]["ok"]
    assert checks["database"]["required"] and checks["redis"]["required"]
    assert not checks["whisper"]["ok"] and not checks["whisper"]["required"]
    assert not checks["llm"]["ok"]
    assert checks["llm"]["detail"]
    for check in checks.values():
        assert check["latency_ms"] >= 0


def test_whisper_health_follows_grpc_serving_status(
    settings: BackendSettings, grpc_health_server: HealthOnlyGrpcServer
) -> None:
    pointed = settings.model_copy(update={"whisper_url": f"127.0.0.1:{grpc_health_server.port}"})
    with (
        ApiServer(create_app(pointed)) as api,
        httpx.Client(base_url=api.url, headers=AUTH) as http,
    ):
        grpc_health_server.set(health_pb2.HealthCheckResponse.SERVING)
        whisper = http.get("/health/ready").json()["checks"]["whisper"]
        assert whisper["ok"], whisper
        grpc_health_server.set(health_pb2.HealthCheckResponse.NOT_SERVING)
        whisper = http.get("/health/ready").json()["checks"]["whisper"]
        assert not whisper["ok"]
        assert "NOT_SERVING" in whisper["detail"]


def test_ready_is_503_when_redis_is_down(
    settings: BackendSettings, tmp_path: object, postgres: object
) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    redis = RedisServer(tmp_path / "redis")
    own = settings.model_copy(update={"redis_url": redis.url})
    with (
        ApiServer(create_app(own)) as api,
        httpx.Client(base_url=api.url, timeout=30, headers=AUTH) as http,
    ):
        assert http.get("/health/ready").status_code == 200
        redis.stop()
        reply = http.get("/health/ready")
        assert reply.status_code == 503
        body = reply.json()
        assert body["status"] == "fail"
        assert not body["checks"]["redis"]["ok"]
        assert body["checks"]["database"]["ok"]
        assert http.get("/health").status_code == 200  # alive, just not ready


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-the-token"}], ids=["anonymous", "wrong-token"]
)
def test_ready_names_no_error_to_a_caller_without_the_token(
    api: ApiServer, headers: dict[str, str]
) -> None:
    """Probes get each dependency's verdict; the errors (addresses, driver messages) only
    the operator with the token."""
    with httpx.Client(base_url=api.url, headers=headers, timeout=30) as http:
        reply = http.get("/health/ready")
    assert reply.status_code == 200  # whisper and llm are down here, but optional
    body = reply.json()
    assert body["checks"]["llm"] == {"ok": False, "required": False}
    assert body["checks"]["database"] == {"ok": True, "required": True}
    assert "Authorization: Bearer" in body["detail"]
    assert "Error" not in reply.text and "latency" not in reply.text


def test_ready_names_the_errors_to_a_caller_with_the_token(client: httpx.Client) -> None:
    llm = client.get("/health/ready").json()["checks"]["llm"]
    assert not llm["ok"] and "ConnectError" in llm["detail"]
