"""The one gRPC health probe: `grpc.health.v1.Health/Check` spoken on the wire.

The request for service "" (the whole server) is the empty message and the reply is one
varint field (1: status), so no generated stubs are needed: importing grpcio-health-checking's
protobuf modules would cost more than the check itself. The backend's readiness, `inv health`
and the containers' HEALTHCHECK all ask through here.
"""

from __future__ import annotations

from typing import Any

CHECK_METHOD = "/grpc.health.v1.Health/Check"
SERVING = "SERVING"
_STATUS_NAMES = {0: "UNKNOWN", 1: SERVING, 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


class NotServingError(RuntimeError):
    """The server answered, with a status other than SERVING (or did not answer)."""


def encode_request(service: str = "") -> bytes:
    """A HealthCheckRequest: field 1 (`service`, a string), omitted when empty."""
    name = service.encode()
    if not name:
        return b""
    if len(name) > 127:
        raise ValueError("service names longer than 127 bytes are not supported")
    return b"\x0a" + bytes([len(name)]) + name


def decode_status(reply: bytes) -> str:
    """The `status` of a HealthCheckResponse (field 1, varint; absent means UNKNOWN)."""
    if not reply:
        return "UNKNOWN"
    if reply[0] != 0x08 or len(reply) < 2:
        raise ValueError(f"not a HealthCheckResponse: {reply!r}")
    return _STATUS_NAMES.get(reply[1], f"status {reply[1]}")


def _rpc_failure(exc: Any) -> NotServingError:
    # grpc's default rendering repeats the details three times; one line suffices.
    return NotServingError(f"{exc.code().name}: {exc.details()}")


def _serving(reply: bytes, service: str) -> str:
    status = decode_status(reply)
    if status != SERVING:
        where = f" for service {service!r}" if service else ""
        raise NotServingError(f"gRPC health is {status}{where}")
    return status


def check(target: str, *, timeout: float, service: str = "") -> str:
    """SERVING, or NotServingError saying why (blocking)."""
    import grpc

    with grpc.insecure_channel(target) as channel:
        call: Any = channel.unary_unary(CHECK_METHOD)
        try:
            reply = call(encode_request(service), timeout=timeout)
        except grpc.RpcError as exc:
            raise _rpc_failure(exc) from None
    return _serving(reply, service)


async def check_async(channel: Any, *, timeout: float, service: str = "") -> str:
    """SERVING, or NotServingError saying why, over an open `grpc.aio` channel."""
    import grpc

    call: Any = channel.unary_unary(CHECK_METHOD)
    try:
        reply = await call(encode_request(service), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        raise _rpc_failure(exc) from None
    return _serving(reply, service)
