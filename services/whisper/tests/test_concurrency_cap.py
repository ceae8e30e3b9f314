"""The cap on concurrent RPCs (the server's thread pool): one call too many is refused at once
with RESOURCE_EXHAUSTED instead of queueing, and the client takes that as "busy, retry", so a
worker's transcription goes through once a slot frees up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from whisper_service import engines
from whisper_service.client import RetryPolicy, WhisperClient
from whisper_service.config import WhisperSettings
from whisper_service.proto.whisper.v1 import transcriber_pb2 as pb
from whisper_service.proto.whisper.v1 import transcriber_pb2_grpc as pb_grpc
from whisper_service.server import WhisperServer


@pytest.fixture
def server() -> Iterator[WhisperServer]:
    settings = WhisperSettings(port=0, metrics_port=0, engine="pocketsphinx", workers=1)  # type: ignore[call-arg]
    server = WhisperServer(settings, loader=engines.load)
    server.start()
    server.load_engine()
    try:
        yield server
    finally:
        server.stop(0)


def _hold_every_slot(target: str, count: int, release: threading.Event) -> list[grpc.Future]:
    """`count` streaming uploads that send nothing until `release`: each holds an RPC."""

    def waiting() -> Iterator[pb.TranscribeRequest]:
        release.wait(30)
        return
        yield  # a generator

    stub = pb_grpc.TranscriberStub(grpc.insecure_channel(target))
    return [stub.Transcribe.future(waiting(), timeout=30) for _ in range(count)]


def test_a_call_over_the_cap_is_refused_at_once_and_the_client_retries_it(
    server: WhisperServer, alice_wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = f"127.0.0.1:{server.port}"
    cap = server.settings.workers * 2 + 8
    release = threading.Event()
    held = _hold_every_slot(target, cap, release)
    try:
        stub = pb_grpc.TranscriberStub(grpc.insecure_channel(target))
        deadline = time.monotonic() + 15
        with pytest.raises(grpc.RpcError) as refused:
            # Answered until the held calls have all arrived, then refused at once.
            while time.monotonic() < deadline:
                stub.GetEngineInfo(pb.GetEngineInfoRequest(), timeout=5)
                time.sleep(0.05)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "Concurrent RPC limit exceeded" in refused.value.details()

        result: dict[str, object] = {}

        def transcribe() -> None:
            policy = RetryPolicy(attempts=8, initial_backoff=0.2, max_backoff=0.5)
            with WhisperClient(target, retry=policy) as client:
                result["text"] = client.transcribe_file(alice_wav).text

        worker = threading.Thread(target=transcribe)
        worker.start()
        threading.Timer(0.5, release.set).start()  # a slot frees up while the client waits
        worker.join(60)
        assert "alice" in str(result.get("text", "")).split(), result
        retries = [r for r in caplog.records if "Concurrent RPC limit exceeded" in r.getMessage()]
        assert retries, "the client went through without meeting the cap"
    finally:
        release.set()
        for call in held:
            call.cancel()
