"""The gRPC API of a real `python -m whisper_service` on loopback (pocketsphinx engine)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from whisper_service.proto.whisper.v1 import transcriber_pb2 as pb
from whisper_service.proto.whisper.v1 import transcriber_pb2_grpc as pb_grpc

SERVICE = "whisper.v1.Transcriber"
TIMEOUT = 60


def words(text: str) -> set[str]:
    return set(text.split())


def assert_still_serving(stub: pb_grpc.TranscriberStub, alice_wav: Path) -> None:
    """After a failed request the same server transcribes the next one."""
    reply = stub.TranscribeFile(
        pb.TranscribeFileRequest(audio=alice_wav.read_bytes()), timeout=TIMEOUT
    )
    assert "budget" in reply.text


# --- transcription ------------------------------------------------------------------------


def test_streaming_transcribe(
    stub: pb_grpc.TranscriberStub, alice_wav: Path, helpers: type
) -> None:
    reply = stub.Transcribe(helpers.stream_requests(alice_wav, chunk=8192), timeout=TIMEOUT)
    assert set(helpers.alice_words) <= words(reply.text), reply.text
    assert (reply.engine, reply.model, reply.device, reply.language) == (
        "pocketsphinx",
        "en-us",
        "cpu",
        "en",
    )
    assert reply.audio_seconds == pytest.approx(3.44, abs=0.01)
    assert 0 < reply.processing_seconds < 30
    assert len(reply.segments) == 1
    segment = reply.segments[0]
    assert 0 <= segment.start_seconds < segment.end_seconds <= reply.audio_seconds
    assert segment.text == reply.text


def test_unary_transcribe_file(
    stub: pb_grpc.TranscriberStub, team_wav: Path, helpers: type
) -> None:
    reply = stub.TranscribeFile(
        pb.TranscribeFileRequest(
            options=pb.TranscriptionOptions(language="en", filename="team.wav"),
            audio=team_wav.read_bytes(),
        ),
        timeout=TIMEOUT,
    )
    assert set(helpers.team_words) <= words(reply.text), reply.text
    assert reply.language == "en"


def test_a_stream_without_options_works(stub: pb_grpc.TranscriberStub, alice_wav: Path) -> None:
    data = alice_wav.read_bytes()
    chunks = (
        pb.TranscribeRequest(audio_chunk=data[i : i + 4096]) for i in range(0, len(data), 4096)
    )
    assert "friday" in stub.Transcribe(chunks, timeout=TIMEOUT).text


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "ogg-opus", "webm", "flac"])
def test_each_format_transcribes(
    fmt: str, stub: pb_grpc.TranscriberStub, encoded_alice: dict[str, Path], helpers: type
) -> None:
    reply = stub.Transcribe(helpers.stream_requests(encoded_alice[fmt]), timeout=TIMEOUT)
    # Lossy codecs may cost a word; the distinctive ones survive.
    assert {"budget", "report", "friday"} <= words(reply.text), (fmt, reply.text)


@pytest.mark.slow
def test_concurrent_requests_each_get_their_own_transcript(
    server: Any, alice_wav: Path, team_wav: Path, helpers: type
) -> None:
    target = server.target
    jobs = [alice_wav, team_wav] * 3
    results: dict[int, str] = {}

    def run(index: int, path: Path) -> None:
        with grpc.insecure_channel(target) as ch:
            reply = pb_grpc.TranscriberStub(ch).Transcribe(
                helpers.stream_requests(path), timeout=TIMEOUT
            )
            results[index] = reply.text

    threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert len(results) == len(jobs)
    for index, path in enumerate(jobs):
        expected = "budget" if path == alice_wav else "engineers"
        assert expected in results[index], (path.name, results[index])


def test_progress_stream_with_pocketsphinx(
    stub: pb_grpc.TranscriberStub, make_speech: Callable[[float], Path], helpers: type
) -> None:
    events = list(
        stub.TranscribeWithProgress(helpers.stream_requests(make_speech(8)), timeout=TIMEOUT)
    )
    *progress, last = events
    result = last.result
    assert last.WhichOneof("event") == "result" and "budget" in result.text
    done = [e.progress.audio_seconds_done for e in progress]
    # The start, each utterance as it is decoded, the end.
    assert done[0] == 0 and done[-1] == pytest.approx(result.audio_seconds, abs=0.01)
    assert done == sorted(done) and len(done) >= 3
    # pocketsphinx knows one language and gives no word timings.
    assert (result.language, result.language_probability) == ("en", 1.0)
    assert all(not s.words for s in result.segments)


def test_engine_info(stub: pb_grpc.TranscriberStub) -> None:
    info = stub.GetEngineInfo(pb.GetEngineInfoRequest(), timeout=10)
    assert info.ready
    assert (info.engine, info.device, list(info.languages)) == ("pocketsphinx", "cpu", ["en"])


# --- health and reflection ----------------------------------------------------------------


@pytest.mark.parametrize("service", ["", SERVICE])
def test_health_is_serving(server: Any, service: str, helpers: type) -> None:
    status = helpers.health_status(server.target, service)
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= (
        services
    )
    # A client with no stubs can discover the methods.
    file = db.FindFileContainingSymbol(SERVICE)
    methods = {m.name for s in file.service if s.name == "Transcriber" for m in s.method}
    assert methods == {"Transcribe", "TranscribeFile", "TranscribeWithProgress", "GetEngineInfo"}


# --- bad input: the right status, a helpful message, and the server carries on -------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", "the upload is empty"),
        (b"PK\x03\x04 this is a zip file, not audio " * 100, "could not decode the audio"),
        (os.urandom(100_000), "could not decode the audio"),
    ],
    ids=["empty", "text", "random"],
)
@pytest.mark.parametrize("method", ["Transcribe", "TranscribeFile"])
def test_garbage_and_empty_are_invalid_argument(
    method: str,
    payload: bytes,
    expected: str,
    stub: pb_grpc.TranscriberStub,
    alice_wav: Path,
    helpers: type,
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        if method == "Transcribe":
            stub.Transcribe(helpers.stream_requests(payload), timeout=TIMEOUT)
        else:
            stub.TranscribeFile(pb.TranscribeFileRequest(audio=payload), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details()
    assert expected in details
    assert "WAV, MP3, M4A/AAC, OGG/Opus, WebM" in details
    assert_still_serving(stub, alice_wav)


def test_a_wav_with_no_samples_is_invalid_argument(
    stub: pb_grpc.TranscriberStub, alice_wav: Path, tmp_path: Path, helpers: type
) -> None:
    import numpy as np

    empty = helpers.write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.int16))
    with pytest.raises(grpc.RpcError) as info:
        stub.Transcribe(helpers.stream_requests(empty), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the audio is empty" in info.value.details()
    assert_still_serving(stub, alice_wav)


def test_too_long_audio_is_invalid_argument(
    stub: pb_grpc.TranscriberStub,
    make_speech: Callable[[float], Path],
    alice_wav: Path,
    helpers: type,
) -> None:
    long = make_speech(50)  # the shared server allows 45 s
    with pytest.raises(grpc.RpcError) as info:
        stub.Transcribe(helpers.stream_requests(long), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "too long" in info.value.details()
    assert "WHISPER_MAX_AUDIO_SECONDS" in info.value.details()
    assert_still_serving(stub, alice_wav)


def test_oversized_message_is_resource_exhausted(
    stub: pb_grpc.TranscriberStub, make_speech: Callable[[float], Path], alice_wav: Path
) -> None:
    big = make_speech(40).read_bytes()  # 1.3 MB; the shared server takes 1 MB per message
    assert len(big) > 1024 * 1024
    with pytest.raises(grpc.RpcError) as info:
        stub.TranscribeFile(pb.TranscribeFileRequest(audio=big), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in info.value.details()
    assert_still_serving(stub, alice_wav)


def test_oversized_chunk_in_a_stream_is_resource_exhausted(
    stub: pb_grpc.TranscriberStub,
    make_speech: Callable[[float], Path],
    alice_wav: Path,
    helpers: type,
) -> None:
    big = make_speech(40)
    with pytest.raises(grpc.RpcError) as info:
        stub.Transcribe(helpers.stream_requests(big, chunk=2 * 1024 * 1024), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_still_serving(stub, alice_wav)


def test_oversized_stream_is_resource_exhausted(
    stub: pb_grpc.TranscriberStub,
    make_speech: Callable[[float], Path],
    alice_wav: Path,
    helpers: type,
) -> None:
    huge = make_speech(70)  # 2.2 MB in small chunks; the shared server takes 2 MB per stream
    with pytest.raises(grpc.RpcError) as info:
        stub.Transcribe(helpers.stream_requests(huge), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "WHISPER_MAX_STREAM_MB" in info.value.details()
    assert_still_serving(stub, alice_wav)


def test_options_after_audio_is_invalid_argument(
    stub: pb_grpc.TranscriberStub, alice_wav: Path
) -> None:
    requests = [
        pb.TranscribeRequest(audio_chunk=alice_wav.read_bytes()),
        pb.TranscribeRequest(options=pb.TranscriptionOptions(language="en")),
    ]
    with pytest.raises(grpc.RpcError) as info:
        stub.Transcribe(iter(requests), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "options must be the first message" in info.value.details()
    assert_still_serving(stub, alice_wav)


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", "only transcribes English"), ("english!", "not an ISO 639-1 code")],
)
def test_unsupported_language_is_invalid_argument(
    language: str, expected: str, stub: pb_grpc.TranscriberStub, alice_wav: Path, helpers: type
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Transcribe(helpers.stream_requests(alice_wav, language=language), timeout=TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in info.value.details()


# --- deadlines and metrics ----------------------------------------------------------------


@pytest.mark.slow
def test_deadline_exceeded_and_the_server_stops_working(
    server: Any,
    stub: pb_grpc.TranscriberStub,
    make_speech: Callable[[float], Path],
    alice_wav: Path,
    helpers: type,
) -> None:
    metrics = server.metrics
    long = make_speech(40)  # several seconds of work for pocketsphinx
    before = helpers.metric_value(
        metrics(), "whisper_requests_total", method="Transcribe", status="DEADLINE_EXCEEDED"
    )
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        stub.Transcribe(helpers.stream_requests(long), timeout=1.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3
    # The server notices and stops within about a second instead of finishing the clip.
    assert helpers.wait_until(
        lambda: (
            helpers.metric_value(
                metrics(), "whisper_requests_total", method="Transcribe", status="DEADLINE_EXCEEDED"
            )
            == before + 1
        ),
        timeout=3,
    ), metrics()
    assert helpers.metric_value(metrics(), "whisper_in_flight_requests") == 0
    assert time.monotonic() - started < 5
    assert_still_serving(stub, alice_wav)


def test_metrics_count_requests_audio_and_time(
    server: Any, stub: pb_grpc.TranscriberStub, alice_wav: Path, helpers: type
) -> None:
    metrics = server.metrics
    value = helpers.metric_value

    def snapshot() -> tuple[float, float, float, float]:
        text = metrics()
        return (
            value(text, "whisper_requests_total", method="TranscribeFile", status="OK"),
            value(
                text, "whisper_requests_total", method="TranscribeFile", status="INVALID_ARGUMENT"
            ),
            value(text, "whisper_audio_seconds_total", engine="pocketsphinx"),
            value(text, "whisper_processing_seconds_count", method="TranscribeFile"),
        )

    ok, bad, audio, timed = snapshot()
    stub.TranscribeFile(pb.TranscribeFileRequest(audio=alice_wav.read_bytes()), timeout=TIMEOUT)
    with pytest.raises(grpc.RpcError):
        stub.TranscribeFile(pb.TranscribeFileRequest(audio=b"garbage"), timeout=TIMEOUT)
    ok2, bad2, audio2, timed2 = snapshot()
    assert (ok2 - ok, bad2 - bad, timed2 - timed) == (1, 1, 2)
    assert audio2 - audio == pytest.approx(3.44, abs=0.01)
    text = metrics()
    ready = value(text, "whisper_engine_ready", engine="pocketsphinx", device="cpu", model="en-us")
    assert ready == 1
    assert "process_cpu_seconds_total" in text


def test_engine_loaded_once_for_all_requests(server: Any) -> None:
    loaded = [e for e in server.logs if e.get("msg") == "pocketsphinx loaded"]
    assert len(loaded) == 1
