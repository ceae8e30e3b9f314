"""The service credential on the gRPC server: every RPC but the health service must carry
SERVICE_TOKEN in its metadata, or it ends UNAUTHENTICATED before any handler runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health

from common import service_auth

# Probes (compose, Kubernetes' grpc probe, `inv health`) carry no metadata; health says
# nothing about the meetings.
_OPEN_PREFIX = f"/{health.SERVICE_NAME}/"
_REFUSAL = f"missing or wrong service credential: send SERVICE_TOKEN as '{service_auth.HEADER}'"


def _refuse(request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, _REFUSAL)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same kind (unary or streaming each way) that only refuses."""
    factory: Callable[..., grpc.RpcMethodHandler]
    if handler.request_streaming and handler.response_streaming:
        factory = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        factory = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        factory = grpc.unary_stream_rpc_method_handler
    else:
        factory = grpc.unary_unary_rpc_method_handler
    return factory(
        _refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class TokenInterceptor(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or details.method.startswith(_OPEN_PREFIX):
            return handler
        presented = next(
            (v for k, v in details.invocation_metadata or () if k == service_auth.HEADER), None
        )
        if service_auth.matches(self._token, presented if isinstance(presented, str) else None):
            return handler
        return _refusing(handler)
