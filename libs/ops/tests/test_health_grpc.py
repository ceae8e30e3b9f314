"""The whisper check speaks grpc.health.v1 without stubs: prove it against the real thing."""

from __future__ import annotations

import asyncio
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ops import health as checks

Status = health_pb2.HealthCheckResponse.ServingStatus


@pytest.mark.parametrize("name", ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"])
def test_decoding_matches_protobuf_encoding(name):
    reply = health_pb2.HealthCheckResponse(status=Status.Value(name)).SerializeToString()
    assert checks.decode_serving_status(reply) == name


def test_a_reply_that_is_not_a_health_response_is_refused():
    with pytest.raises(ValueError, match="not a HealthCheckResponse"):
        checks.decode_serving_status(b"\x12\x03abc")


@pytest.fixture
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_probe_follows_a_real_health_servicer(health_server):
    servicer, target = health_server
    probe = checks.grpc_probe(target)

    servicer.set("", Status.SERVING)
    assert asyncio.run(probe()) == "SERVING"

    servicer.set("", Status.NOT_SERVING)
    with pytest.raises(RuntimeError, match="gRPC health is NOT_SERVING"):
        asyncio.run(probe())
