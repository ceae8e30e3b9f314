"""A real `python -m whisper_service` running faster-whisper on a real model, over gRPC."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from whisper_service.client import AudioRejectedError, WhisperClient
from whisper_service.proto.whisper.v1 import transcriber_pb2 as pb
from whisper_service.proto.whisper.v1 import transcriber_pb2_grpc as pb_grpc

TIMEOUT = 120
ALICE = ("Alice", "budget", "report", "Friday")


@pytest.fixture(scope="module")
def whisper_server(whisper_model_dir: Path, helpers: type) -> Iterator[Any]:
    process = helpers.start_server(
        WHISPER_ENGINE="faster-whisper",
        WHISPER_MODEL_DIR=str(whisper_model_dir),
        WHISPER_WORKERS="1",
    )
    try:
        process.wait_serving()
        yield process
    finally:
        process.stop()


@pytest.fixture
def stub(whisper_server: Any) -> Iterator[pb_grpc.TranscriberStub]:
    with grpc.insecure_channel(whisper_server.target) as channel:
        yield pb_grpc.TranscriberStub(channel)


def png() -> bytes:
    """A valid 1x1 PNG image: a real file, just not audio."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_festival_speech_with_progress_words_and_language(
    stub: pb_grpc.TranscriberStub, alice_wav: Path, helpers: type
) -> None:
    events = list(stub.TranscribeWithProgress(helpers.stream_requests(alice_wav), timeout=TIMEOUT))
    *progress, last = events
    assert last.WhichOneof("event") == "result"
    reply = last.result
    # Whisper writes sentences (festival's voice makes it hear "a budget report" at times).
    for word in ALICE:
        assert word in reply.text, reply.text
    assert reply.text[0].isupper() and reply.text.endswith("."), reply.text
    assert (reply.engine, reply.device, reply.language) == ("faster-whisper", "cpu", "en")
    assert 0.5 < reply.language_probability <= 1
    assert reply.audio_seconds == pytest.approx(3.44, abs=0.01)
    words = [w for s in reply.segments for w in s.words]
    assert [w.word for w in words] == reply.text.split()
    for segment in reply.segments:
        for word in segment.words:
            assert segment.start_seconds <= word.start_seconds <= word.end_seconds
            assert word.end_seconds <= segment.end_seconds
            assert 0 < word.probability <= 1
    # Progress: in order, from 0 to the total, with the segment's end on the way.
    assert progress and all(e.WhichOneof("event") == "progress" for e in progress)
    done = [e.progress.audio_seconds_done for e in progress]
    assert done == sorted(done) and done[0] == 0 and len(done) >= 3, done
    assert done[-1] == pytest.approx(reply.audio_seconds, abs=0.01)
    assert {e.progress.audio_seconds_total for e in progress} == {round(reply.audio_seconds, 2)}
    assert reply.segments[0].end_seconds in done


def test_a_video_is_transcribed_from_its_audio_track(
    stub: pb_grpc.TranscriberStub, videos: dict[str, Path], helpers: type
) -> None:
    # Through the original streaming RPC, unchanged.
    reply = stub.Transcribe(helpers.stream_requests(videos["with-audio"]), timeout=TIMEOUT)
    for word in ALICE:
        assert word in reply.text, reply.text
    assert reply.segments[0].words


def test_the_client_passes_vocabulary_and_reports_progress(
    whisper_server: Any, contract_wav: Path
) -> None:
    seen: list[tuple[float, float]] = []
    with WhisperClient(whisper_server.target, timeout=TIMEOUT) as client:
        transcript = client.transcribe_file(
            contract_wav,
            vocabulary="Przybylski",
            on_progress=lambda done, total: seen.append((done, total)),
        )
    # Without the hint Whisper writes "Perzo Bilsky" (test_faster_whisper.py).
    assert "Przybylski" in transcript.text, transcript.text
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] == round(transcript.audio_seconds, 2)
    assert transcript.language == "en" and transcript.language_probability > 0.5
    assert " ".join(w.word for w in transcript.words) == transcript.text
    assert {w.segment for w in transcript.words} == set(range(len(transcript.segments)))
    name = next(w for w in transcript.words if w.word == "Przybylski")
    segment = transcript.segments[name.segment]
    assert segment.start <= name.start < name.end <= segment.end


def test_quiet_room_noise_gives_an_empty_transcript(
    stub: pb_grpc.TranscriberStub, tmp_path: Path, helpers: type
) -> None:
    quiet = helpers.write_wav(tmp_path / "quiet.wav", helpers.noise("room", 30, level=0.01))
    reply = stub.TranscribeFile(pb.TranscribeFileRequest(audio=quiet.read_bytes()), timeout=60)
    assert (reply.text, list(reply.segments), reply.language) == ("", [], "")
    assert reply.language_probability == 0
    assert reply.audio_seconds == pytest.approx(30)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("empty", "the upload is empty"),
        ("random", "could not decode the audio"),
        ("png", "could not decode the audio"),
        ("silent-film", "a video without an audio track"),
    ],
)
def test_bad_input_is_invalid_argument_on_the_progress_stream(
    stub: pb_grpc.TranscriberStub,
    videos: dict[str, Path],
    payload: str,
    expected: str,
    helpers: type,
) -> None:
    data = {
        "empty": b"",
        "random": os.urandom(50_000),
        "png": png(),
        "silent-film": videos["no-audio"].read_bytes(),
    }[payload]
    with pytest.raises(grpc.RpcError) as info:
        list(stub.TranscribeWithProgress(helpers.stream_requests(data), timeout=TIMEOUT))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in info.value.details()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"language": "xx"}, "does not know language 'xx'"),
        ({"vocabulary": " ".join(["Kubernetes"] * 300)}, "vocabulary hint is"),
    ],
)
def test_requests_the_model_cannot_serve_are_rejected_with_the_reason(
    whisper_server: Any, alice_wav: Path, options: dict[str, str], expected: str
) -> None:
    with (
        WhisperClient(whisper_server.target, timeout=TIMEOUT) as client,
        pytest.raises(AudioRejectedError, match=expected),
    ):
        client.transcribe_file(alice_wav, **options, on_progress=lambda *_: None)


def test_engine_info_lists_the_model_languages(stub: pb_grpc.TranscriberStub) -> None:
    info = stub.GetEngineInfo(pb.GetEngineInfoRequest(), timeout=10)
    assert (info.engine, info.compute_type, info.ready) == ("faster-whisper", "int8", True)
    assert {"en", "de", "fr"} <= set(info.languages)
