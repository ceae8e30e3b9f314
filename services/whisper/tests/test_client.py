"""whisper_service.client against real servers: results, rejections, retries, giving up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from whisper_service.client import (
    AudioRejectedError,
    RetryPolicy,
    Segment,
    Transcript,
    WhisperClient,
    WhisperUnavailableError,
)

FAST_RETRY = RetryPolicy(attempts=4, initial_backoff=0.2, max_backoff=0.5)


def test_transcribe_file_returns_a_transcript(server: Any, alice_wav: Path, helpers: type) -> None:
    with WhisperClient(server.target, timeout=60) as client:
        transcript = client.transcribe_file(alice_wav)
    assert isinstance(transcript, Transcript)
    assert set(helpers.alice_words) <= set(transcript.text.split())
    assert (transcript.engine, transcript.model, transcript.language) == (
        "pocketsphinx",
        "en-us",
        "en",
    )
    assert transcript.audio_seconds == pytest.approx(3.44, abs=0.01)
    assert transcript.processing_seconds > 0
    # Segments are (start, end, text) tuples with names.
    (start, end, text), *_ = transcript.segments
    assert isinstance(transcript.segments[0], Segment)
    assert 0 <= start < end and "budget" in text


def test_progress_callback_sees_the_start_and_the_end(
    server: Any, make_speech: Callable[[float], Path]
) -> None:
    seen: list[tuple[float, float]] = []
    with WhisperClient(server.target, timeout=60) as client:
        transcript = client.transcribe_file(
            make_speech(8), vocabulary="Przybylski", on_progress=lambda *p: seen.append(p)
        )
    total = round(transcript.audio_seconds, 2)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert "budget" in transcript.text  # pocketsphinx ignores the vocabulary
    assert (transcript.words, transcript.language_probability) == ([], 1.0)


def test_a_failing_progress_callback_cancels_the_call(
    server: Any, make_speech: Callable[[float], Path], helpers: type
) -> None:
    def give_up(done: float, total: float) -> None:
        raise KeyboardInterrupt  # e.g. the worker's task was revoked

    value = helpers.metric_value
    metric = "whisper_requests_total"
    before = value(server.metrics(), metric, method="TranscribeWithProgress", status="CANCELLED")
    with WhisperClient(server.target, timeout=60) as client, pytest.raises(KeyboardInterrupt):
        client.transcribe_file(make_speech(30), on_progress=give_up)
    # The server noticed and stopped instead of transcribing the rest.
    assert helpers.wait_until(
        lambda: (
            value(server.metrics(), metric, method="TranscribeWithProgress", status="CANCELLED")
            == before + 1
        ),
        timeout=5,
    )


def test_small_chunks_stream_the_same_result(server: Any, encoded_alice: dict[str, Path]) -> None:
    with WhisperClient(server.target, timeout=60, chunk_bytes=1000) as client:
        transcript = client.transcribe_file(encoded_alice["m4a"], language="en")
    assert "budget" in transcript.text


def test_engine_info(server: Any) -> None:
    with WhisperClient(server.target, timeout=10) as client:
        info = client.engine_info()
    assert info.ready and info.engine == "pocketsphinx" and info.languages == ["en"]


def test_bad_audio_raises_audio_rejected(server: Any, tmp_path: Path) -> None:
    garbage = tmp_path / "meeting.mp3"
    garbage.write_bytes(b"\x00\x01 not really an mp3 " * 500)
    with WhisperClient(server.target, timeout=60, retry=FAST_RETRY) as client:
        started = time.monotonic()
        with pytest.raises(AudioRejectedError) as info:
            client.transcribe_file(garbage)
    assert "could not decode the audio" in str(info.value)
    assert time.monotonic() - started < 5  # permanent errors are not retried


def test_unsupported_language_raises_audio_rejected(server: Any, alice_wav: Path) -> None:
    with WhisperClient(server.target, timeout=60) as client, pytest.raises(AudioRejectedError):
        client.transcribe_file(alice_wav, language="fr")


def test_missing_file_is_a_local_error(server: Any, tmp_path: Path) -> None:
    with WhisperClient(server.target) as client, pytest.raises(FileNotFoundError):
        client.transcribe_file(tmp_path / "nope.wav")


def test_gives_up_with_unavailable_after_bounded_retries(
    helpers: type, alice_wav: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = helpers.free_port()  # nothing listens there
    caplog.set_level(logging.WARNING, logger="whisper_service.client")
    with WhisperClient(f"127.0.0.1:{port}", timeout=5, retry=FAST_RETRY) as client:
        started = time.monotonic()
        with pytest.raises(WhisperUnavailableError) as info:
            client.transcribe_file(alice_wav)
        elapsed = time.monotonic() - started
    assert "unavailable after 4 attempts" in str(info.value)
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 3
    # Backoff 0.2, 0.4, 0.5 s (+-20 %): it waited, but not for ever.
    assert 0.8 < elapsed < 5


@pytest.mark.slow
def test_retries_until_the_server_comes_up(
    helpers: type, alice_wav: Path, spawn_server: Callable[..., Any]
) -> None:
    port = helpers.free_port()
    retry = RetryPolicy(attempts=30, initial_backoff=0.2, max_backoff=1.0)
    outcome: dict[str, Any] = {}

    def transcribe() -> None:
        with WhisperClient(f"127.0.0.1:{port}", timeout=60, retry=retry) as client:
            try:
                outcome["transcript"] = client.transcribe_file(alice_wav)
            except Exception as exc:  # reported below
                outcome["error"] = exc

    caller = threading.Thread(target=transcribe)
    caller.start()
    time.sleep(1.5)  # the client is retrying against a closed port by now
    assert caller.is_alive()
    # Then the server starts (and answers UNAVAILABLE while its engine loads: retried too).
    spawn_server(WHISPER_PORT=str(port))
    caller.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert "budget" in outcome["transcript"].text


def test_deadline_exceeded_is_unavailable_not_rejected(
    server: Any, make_speech: Callable[[float], Path]
) -> None:
    client = WhisperClient(server.target, timeout=0.5, retry=FAST_RETRY)
    with client, pytest.raises(WhisperUnavailableError) as info:
        client.transcribe_file(make_speech(30))
    assert "within 0.5 s" in str(info.value)
