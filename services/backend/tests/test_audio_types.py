"""Magic-byte sniffing on real files encoded by ffmpeg (through PyAV) and by sox."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from backend.services.audio_types import FLAC, M4A, MP3, OGG, SNIFF_BYTES, WAV, WEBM, sniff


def encode(container: str, codec: str, rate: int = 48_000) -> bytes:
    av = pytest.importorskip("av")
    np = pytest.importorskip("numpy")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        tone = (np.sin(np.arange(rate // 4) / 10) * 10_000).astype("int16").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("container", "codec", "expected"),
    [
        ("mp3", "libmp3lame", MP3),
        ("ogg", "libopus", OGG),
        ("flac", "flac", FLAC),
        ("ipod", "aac", M4A),  # ffmpeg's muxer for .m4a
        ("webm", "libopus", WEBM),
        ("wav", "pcm_s16le", WAV),
    ],
)
def test_ffmpeg_encoded_audio_is_recognised(container: str, codec: str, expected: object) -> None:
    data = encode(container, codec)
    assert sniff(data[:SNIFF_BYTES]) == expected


def test_python_wave_module_output_is_wav() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x00" * 100)
    assert sniff(buffer.getvalue()[:SNIFF_BYTES]) == WAV


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_sox_flac_and_ogg(tmp_path: Path) -> None:
    for suffix, expected in (("flac", FLAC), ("ogg", OGG)):
        target = tmp_path / f"tone.{suffix}"
        subprocess.run(
            ["sox", "-n", "-r", "16000", "-c", "1", str(target), "synth", "0.2", "sine", "440"],
            check=True,
            capture_output=True,
        )
        assert sniff(target.read_bytes()[:SNIFF_BYTES]) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"RIFF\x00\x00\x00\x00AVI LIST",  # RIFF, but video
        b"\x89PNG\r\n\x1a\n",
        b"%PDF-1.7",
        b"PK\x03\x04",
        b"\xff\xf1\x50\x80",  # AAC ADTS frame sync (layer bits 00): not MP3
        b"\xff\xfb\xf0\x00",  # MPEG frame sync with the invalid bitrate index 1111
        b"<html><body>",
    ],
)
def test_non_audio_is_rejected(head: bytes) -> None:
    assert sniff(head) is None
