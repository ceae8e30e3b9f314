"""Start-up and shutdown: health transitions, SIGTERM with an RPC in flight, grace period."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from whisper_service import engines
from whisper_service.config import WhisperSettings
from whisper_service.proto.whisper.v1 import transcriber_pb2 as pb
from whisper_service.proto.whisper.v1 import transcriber_pb2_grpc as pb_grpc
from whisper_service.server import GRPC_SERVICE_NAME, WhisperServer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def gated_server() -> Iterator[tuple[WhisperServer, threading.Event]]:
    """An in-process server whose (real) engine load waits for the test to open a gate."""
    gate = threading.Event()

    def loader(settings: WhisperSettings) -> engines.Engine:
        assert gate.wait(30), "the test never opened the gate"
        return engines.load(settings)

    settings = WhisperSettings(port=0, metrics_port=0, engine="pocketsphinx", workers=1)  # type: ignore[call-arg]
    server = WhisperServer(settings, loader=loader)
    server.start()
    try:
        yield server, gate
    finally:
        gate.set()
        server.stop(0)


def check(target: str, service: str) -> int:
    with grpc.insecure_channel(target) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        return int(reply.status)


def test_health_goes_not_serving_serving_not_serving(
    gated_server: tuple[WhisperServer, threading.Event], alice_wav: Path
) -> None:
    server, gate = gated_server
    target = f"127.0.0.1:{server.port}"
    loading = threading.Thread(target=server.load_engine)
    loading.start()

    # 1. Listening, engine not loaded: NOT_SERVING for the server and the service, and
    #    transcriptions are refused with UNAVAILABLE (clients retry).
    for service in ("", GRPC_SERVICE_NAME):
        assert check(target, service) == NOT_SERVING
    with grpc.insecure_channel(target) as ch:
        stub = pb_grpc.TranscriberStub(ch)
        with pytest.raises(grpc.RpcError) as info:
            stub.TranscribeFile(pb.TranscribeFileRequest(audio=alice_wav.read_bytes()), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "still loading" in info.value.details()
        assert not stub.GetEngineInfo(pb.GetEngineInfoRequest(), timeout=5).ready

        # 2. Loaded: SERVING for both.
        gate.set()
        loading.join(30)
        for service in ("", GRPC_SERVICE_NAME):
            assert check(target, service) == SERVING
        reply = stub.TranscribeFile(
            pb.TranscribeFileRequest(audio=alice_wav.read_bytes()), timeout=30
        )
        assert "budget" in reply.text

        # 3. Shutting down: a watcher sees NOT_SERVING for both names.
        watches = {
            service: health_pb2_grpc.HealthStub(ch).Watch(
                health_pb2.HealthCheckRequest(service=service), timeout=30
            )
            for service in ("", GRPC_SERVICE_NAME)
        }
        for watch in watches.values():
            assert next(watch).status == SERVING
        stopper = threading.Thread(target=server.stop, args=(5,))
        stopper.start()
        try:
            for watch in watches.values():
                assert next(watch).status == NOT_SERVING
        finally:
            for watch in watches.values():
                watch.cancel()  # an open Watch would hold the shutdown for the whole grace
            stopper.join(10)
    assert not stopper.is_alive()


@pytest.mark.slow
def test_sigterm_lets_the_running_rpc_finish_and_refuses_new_ones(
    spawn_server: Callable[..., Any], make_speech: Callable[[float], Path], helpers: type
) -> None:
    grace = 40
    server = spawn_server(WHISPER_GRACE_SECONDS=str(grace), WHISPER_MAX_AUDIO_SECONDS="60")
    server.wait_serving()
    speech = make_speech(25)  # ~5-8 s of work for pocketsphinx on two cores
    outcome: dict[str, Any] = {}

    def transcribe() -> None:
        with grpc.insecure_channel(server.target) as ch:
            try:
                outcome["reply"] = pb_grpc.TranscriberStub(ch).Transcribe(
                    helpers.stream_requests(speech), timeout=120
                )
            except grpc.RpcError as exc:
                outcome["error"] = exc

    in_flight = threading.Thread(target=transcribe)
    in_flight.start()
    assert helpers.wait_until(
        lambda: helpers.metric_value(server.metrics(), "whisper_in_flight_requests") == 1, 30
    )
    with grpc.insecure_channel(server.target) as watch_channel:
        watch = health_pb2_grpc.HealthStub(watch_channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=60
        )
        assert next(watch).status == SERVING
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING
        watch.cancel()

    # New RPCs are refused while the running one drains.
    with grpc.insecure_channel(server.target) as ch:
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.TranscriberStub(ch).GetEngineInfo(pb.GetEngineInfoRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "reply" not in outcome, "the long transcription should still have been running"

    in_flight.join(grace)
    assert "error" not in outcome, outcome.get("error")
    reply = outcome["reply"]
    assert "budget" in reply.text and "engineers" in reply.text
    assert reply.audio_seconds > 24

    assert server.proc.wait(timeout=grace) == 0
    assert time.monotonic() - signalled < grace
    messages = [e.get("msg") for e in server.logs]
    assert "stopped" in messages


def test_sigterm_while_idle_exits_0_quickly(spawn_server: Callable[..., Any]) -> None:
    server = spawn_server()
    server.wait_serving()
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0
    assert time.monotonic() - started < 5


def test_engine_failure_after_listening_exits_2(
    spawn_server: Callable[..., Any], tmp_path: Path
) -> None:
    junk = tmp_path / "model"
    junk.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.json"):
        (junk / name).write_text("junk")
    server = spawn_server(WHISPER_ENGINE="auto", WHISPER_MODEL_DIR=str(junk))
    assert server.proc.wait(timeout=60) == 2
    server.reader.join(10)
    last = server.raw[-1]
    assert last.startswith("whisper: could not load the faster-whisper model")
    assert "inv models.pull" in last
