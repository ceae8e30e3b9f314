"""The one gRPC health probe speaks grpc.health.v1 without stubs: prove it against the real
servicer from grpcio-health-checking."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common import grpc_health

Status = health_pb2.HealthCheckResponse.ServingStatus


@pytest.mark.parametrize("name", ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"])
def test_decoding_matches_protobuf_encoding(name: str) -> None:
    reply = health_pb2.HealthCheckResponse(status=Status.Value(name)).SerializeToString()
    assert grpc_health.decode_status(reply) == name


@pytest.mark.parametrize("service", ["", "whisper.v1.Transcriber"])
def test_encoding_matches_protobuf_encoding(service: str) -> None:
    expected = health_pb2.HealthCheckRequest(service=service).SerializeToString()
    assert grpc_health.encode_request(service) == expected


def test_a_reply_that_is_not_a_health_response_is_refused() -> None:
    with pytest.raises(ValueError, match="not a HealthCheckResponse"):
        grpc_health.decode_status(b"\x12\x03abc")


@pytest.fixture
def health_server() -> Iterator[tuple[health.HealthServicer, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


def _check_async(target: str, service: str = "") -> str:
    async def run() -> str:
        async with grpc.aio.insecure_channel(target) as channel:
            return await grpc_health.check_async(channel, timeout=2, service=service)

    return asyncio.run(run())


def test_both_probes_follow_a_real_health_servicer(
    health_server: tuple[health.HealthServicer, str],
) -> None:
    servicer, target = health_server
    servicer.set("", Status.SERVING)
    assert grpc_health.check(target, timeout=2) == "SERVING"
    assert _check_async(target) == "SERVING"

    servicer.set("", Status.NOT_SERVING)
    for probe in (lambda: grpc_health.check(target, timeout=2), lambda: _check_async(target)):
        with pytest.raises(grpc_health.NotServingError, match="gRPC health is NOT_SERVING"):
            probe()


def test_a_named_service_is_asked_for_by_name(
    health_server: tuple[health.HealthServicer, str],
) -> None:
    servicer, target = health_server
    servicer.set("", Status.SERVING)
    servicer.set("whisper.v1.Transcriber", Status.NOT_SERVING)
    named = r"NOT_SERVING for service 'whisper\.v1\.Transcriber'"
    with pytest.raises(grpc_health.NotServingError, match=named):
        grpc_health.check(target, timeout=2, service="whisper.v1.Transcriber")
    with pytest.raises(grpc_health.NotServingError, match="NOT_FOUND"):
        grpc_health.check(target, timeout=2, service="nope.v1.Nothing")


def test_nothing_listening_is_unavailable(unused_port: int) -> None:
    with pytest.raises(grpc_health.NotServingError, match="UNAVAILABLE"):
        grpc_health.check(f"127.0.0.1:{unused_port}", timeout=1)
