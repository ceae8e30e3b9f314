"""Decoding uploads with PyAV: every accepted format, and clear errors for the rest."""

from __future__ import annotations

import os
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from whisper_service.audio import SAMPLE_RATE, _SampleBuffer, decode
from whisper_service.errors import ACCEPTED_FORMATS, AudioError, CancelledError


@pytest.mark.parametrize("fmt", ["wav", "mp3", "m4a", "ogg-opus", "webm", "flac"])
def test_each_format_decodes_to_16k_mono(fmt: str, encoded_alice: dict[str, Path]) -> None:
    audio = decode(encoded_alice[fmt].read_bytes(), max_seconds=60)
    assert audio.samples.dtype == np.int16
    # alice.wav is 3.44 s; lossy encoders pad a few frames.
    assert 3.3 < audio.seconds < 3.7
    # Speech, not silence: a decoder that produced zeros would pass a length check.
    assert np.abs(audio.samples).max() > 3000


def test_decodes_from_a_seekable_file(encoded_alice: dict[str, Path]) -> None:
    with encoded_alice["m4a"].open("rb") as f:
        assert decode(f, max_seconds=60).seconds > 3.3


def test_stereo_44k_is_downmixed_and_resampled(
    alice_wav: Path, tmp_path: Path, helpers: type
) -> None:
    mono = helpers.read_pcm(alice_wav)
    stereo = np.repeat(
        np.interp(np.arange(0, len(mono), 16000 / 44100), np.arange(len(mono)), mono).astype(
            np.int16
        ),
        2,
    )

    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(stereo.tobytes())
    audio = decode(path.read_bytes(), max_seconds=60)
    assert abs(audio.seconds - len(mono) / SAMPLE_RATE) < 0.05


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the upload is empty"),
        (b"this is a meeting recording, honest " * 200, "could not decode the audio"),
        (os.urandom(64 * 1024), "could not decode the audio"),
        # A playlist must not make FFmpeg open the files it names.
        (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", "could not decode the audio"),
    ],
    ids=["empty", "text", "random", "playlist"],
)
def test_unusable_input_raises_a_clear_error(data: bytes, expected: str) -> None:
    with pytest.raises(AudioError) as info:
        decode(data, max_seconds=60)
    assert expected in str(info.value)
    if "decode" in expected:
        assert ACCEPTED_FORMATS in str(info.value)


def test_a_wav_with_no_samples_is_empty(tmp_path: Path, helpers: type) -> None:
    path = helpers.write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.int16))
    with pytest.raises(AudioError, match="the audio is empty"):
        decode(path.read_bytes(), max_seconds=60)


def test_truncated_file_is_rejected(encoded_alice: dict[str, Path]) -> None:
    with pytest.raises(AudioError, match="could not decode"):
        decode(encoded_alice["mp3"].read_bytes()[:200], max_seconds=60)


def test_too_long_names_the_limit_and_the_setting(alice_wav: Path) -> None:
    with pytest.raises(AudioError) as info:
        decode(alice_wav.read_bytes(), max_seconds=2)
    message = str(info.value)
    assert "too long" in message
    assert "WHISPER_MAX_AUDIO_SECONDS" in message


def test_too_long_counts_decoded_audio_not_only_the_header(
    encoded_alice: dict[str, Path],
) -> None:
    # Four mp3 files glued together: one file's header, four files' worth of frames.
    data = encoded_alice["mp3"].read_bytes() * 4
    with pytest.raises(AudioError, match="too long"):
        decode(data, max_seconds=5)


def test_the_sample_buffer_grows_past_the_header_estimate() -> None:
    # A header may promise less than the file holds; the buffer then doubles, keeping order.
    buffer = _SampleBuffer(expected=SAMPLE_RATE)
    chunks = [np.full(999, i, dtype=np.int16) for i in range(100)]
    for chunk in chunks:
        buffer.append(chunk)
    assert np.array_equal(buffer.samples(), np.concatenate(chunks))


def test_a_video_is_decoded_from_its_audio_track(videos: dict[str, Path]) -> None:
    audio = decode(videos["with-audio"].read_bytes(), max_seconds=60)
    assert 3.3 < audio.seconds < 3.7
    assert np.abs(audio.samples).max() > 3000


def test_a_video_without_sound_says_so(videos: dict[str, Path]) -> None:
    with pytest.raises(AudioError, match="video without an audio track"):
        decode(videos["no-audio"].read_bytes(), max_seconds=60)


def test_decoding_stops_when_asked(make_speech: Callable[[float], Path]) -> None:
    path = make_speech(30)
    with pytest.raises(CancelledError):
        decode(path.read_bytes(), max_seconds=60, should_stop=lambda: True)
