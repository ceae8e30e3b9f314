"""The gRPC server: Transcriber, the standard health service, reflection (not in prod) and
metrics; with SERVICE_TOKEN set, every RPC but health must carry it (auth.py).

Life cycle: `start()` listens at once with health NOT_SERVING, `load_engine()` loads the
speech engine and flips health to SERVING, `stop(grace)` flips it back to NOT_SERVING, refuses
new RPCs and lets the running ones finish within the grace period.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from whisper_service import engines, tracing
from whisper_service.auth import TokenInterceptor
from whisper_service.config import WhisperSettings
from whisper_service.engines import Engine
from whisper_service.metrics import Metrics
from whisper_service.proto.whisper.v1 import transcriber_pb2, transcriber_pb2_grpc
from whisper_service.servicer import TranscriberServicer

log = logging.getLogger(__name__)

# The full gRPC name, as health checks and reflection list it.
GRPC_SERVICE_NAME: str = transcriber_pb2.DESCRIPTOR.services_by_name["Transcriber"].full_name
# Health, reflection and engine-info calls must still be answered while every engine slot
# is busy, and streamed uploads hold a thread while they arrive: give the pool headroom.
_EXTRA_THREADS = 8

EngineLoader = Callable[[WhisperSettings], Engine]


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class WhisperServer:
    def __init__(self, settings: WhisperSettings, loader: EngineLoader = engines.load) -> None:
        self.settings = settings
        self._loader = loader
        self.metrics = Metrics()
        # Blocking Watch: in the non-blocking mode a status change sends to watchers while
        # holding the servicer's lock, and a watcher closing at that moment needs the same
        # lock on gRPC's event thread: a deadlock seen at shutdown. A blocking watcher costs
        # a pool thread per open Watch instead (probes use Check).
        self.health = health.HealthServicer(experimental_non_blocking=False)
        # The servicer starts out SERVING for ""; nothing is served until the engine is loaded.
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.servicer = TranscriberServicer(settings, self.metrics)
        threads = settings.workers * 2 + _EXTRA_THREADS
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc")
        interceptors = tracing.server_interceptors(GRPC_SERVICE_NAME)
        token = settings.service_token.get_secret_value()
        if token:
            interceptors.append(TokenInterceptor(token))
        self.grpc = grpc.server(
            self._executor,
            interceptors=interceptors,
            # Each RPC holds a pool thread; past the pool gRPC would queue calls in memory
            # without bound (streamed uploads spool to disk meanwhile). Over the cap a call
            # fails at once with RESOURCE_EXHAUSTED, which the client retries with backoff.
            maximum_concurrent_rpcs=threads,
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                # Keep connections from idle clients (the worker) alive through proxies.
                ("grpc.keepalive_time_ms", 60_000),
                ("grpc.http2.max_pings_without_data", 0),
            ],
        )
        transcriber_pb2_grpc.add_TranscriberServicer_to_server(self.servicer, self.grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        self.reflection = settings.app_env != "prod"
        if self.reflection:
            # A map of the API for grpcurl in dev and staging (behind the token there); prod
            # tells a stranger nothing about its methods.
            reflection.enable_server_reflection(
                (GRPC_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.grpc
            )
        self.port = 0
        self.metrics_port = 0
        self._stop_lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Listen on WHISPER_HOST:WHISPER_PORT and the metrics port; raises OSError if taken."""
        address = listen_address(self.settings.host, self.settings.port)
        try:
            self.port = self.grpc.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {address}: {exc}") from exc
        try:
            self.metrics_port = self.metrics.serve(self.settings.host, self.settings.metrics_port)
        except OSError as exc:
            address = listen_address(self.settings.host, self.settings.metrics_port)
            raise OSError(
                f"cannot serve metrics on {address} (WHISPER_METRICS_PORT): "
                f"{exc.strerror or exc}; set WHISPER_METRICS_PORT to a free port"
            ) from exc
        self.grpc.start()
        log.info(
            "listening on %s (metrics on port %d), engine loading",
            listen_address(self.settings.host, self.port),
            self.metrics_port,
            extra={
                "address": listen_address(self.settings.host, self.port),
                "grpc_port": self.port,
                "metrics_port": self.metrics_port,
                "workers": self.settings.workers,
            },
        )

    def load_engine(self) -> Engine:
        """Load the engine (slow), then report SERVING. Raises EngineError on failure."""
        engine = self._loader(self.settings)
        d = engine.description
        self.servicer.engine = engine
        self.metrics.engine_ready.labels(d.engine, d.model, d.device, d.compute_type).set(1)
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving with %s",
            d.summary(),
            extra={
                "engine": d.engine,
                "model": d.model,
                "device": d.device,
                "compute_type": d.compute_type,
            },
        )
        return engine

    def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, refuse new RPCs, wait up to `grace` seconds for running ones."""
        grace = self.settings.grace_seconds if grace is None else grace
        with self._stop_lock:  # a second caller waits for the first shutdown to finish
            if self._stopped:
                return
            self._stopped = True
            self._shutdown(grace)

    def _shutdown(self, grace: float) -> None:
        log.info("shutting down", extra={"grace_seconds": grace})
        self.health.enter_graceful_shutdown()
        self.metrics.engine_ready.clear()
        self.grpc.stop(grace).wait()
        self.metrics.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.servicer.engine is not None:
            self.servicer.engine.close()
        log.info("stopped")

    def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for service in ("", GRPC_SERVICE_NAME):
            self.health.set(service, status)
