"""Health probe for the whisper server: `python -m whisper_service.probe HOST:PORT`.

Exits 0 when grpc.health.v1 reports SERVING, 1 otherwise (NOT_SERVING while the engine loads
or during shutdown, or no answer). Docker HEALTHCHECKs and `inv health` can call it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_TIMEOUT = 3.0


def status(target: str, timeout: float = DEFAULT_TIMEOUT, service: str = "") -> str:
    """The serving status name for `service` ("" = whole server), or why there is none."""
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call):
                return f"{exc.code().name}: {exc.details()}"
            return str(exc)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def check(target: str, timeout: float = DEFAULT_TIMEOUT, service: str = "") -> bool:
    """True when the server at `target` reports SERVING."""
    return status(target, timeout, service) == "SERVING"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m whisper_service.probe", description=__doc__.splitlines()[0]
    )
    parser.add_argument("target", help="HOST:PORT of the whisper gRPC server")
    parser.add_argument("--service", default="", help="service name ('' = the whole server)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    args = parser.parse_args(argv)
    state = status(args.target, args.timeout, args.service)
    print(f"{args.target}: {state}")  # noqa: T201 (the probe's one line of output)
    return 0 if state == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
