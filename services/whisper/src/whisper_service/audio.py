"""Decode any common audio container to 16 kHz mono 16-bit PCM with PyAV (FFmpeg).

A video file (MP4, MOV, MKV, WebM) is decoded from its first audio track; its video packets
are read past, never decoded.

Only audio demuxers are allowed (FFmpeg's `format_whitelist`): playlist-like formats such as
HLS or concat could otherwise make FFmpeg open other files or URLs named inside the upload.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

import av
import numpy as np
import numpy.typing as npt

from whisper_service.errors import ACCEPTED_FORMATS, AudioError, CancelledError

SAMPLE_RATE = 16_000
# FFmpeg demuxer names; "mov" covers mp4/m4a, "matroska" covers webm.
_DEMUXERS = "wav,mp3,mov,mp4,aac,ogg,matroska,webm,flac"
# Checking for cancellation every ~10 s of decoded audio costs nothing measurable.
_CHECK_EVERY_SAMPLES = 10 * SAMPLE_RATE

ShouldStop = Callable[[], bool]


@dataclass(frozen=True)
class Audio:
    """Mono int16 samples at SAMPLE_RATE."""

    samples: npt.NDArray[np.int16]

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def pcm_bytes(self) -> bytes:
        return self.samples.tobytes()

    def float32(self) -> npt.NDArray[np.float32]:
        return self.samples.astype(np.float32) / 32768.0


def _unreadable(reason: str) -> AudioError:
    return AudioError(
        f"could not decode the audio ({reason}); accepted formats: {ACCEPTED_FORMATS}"
    )


def decode(
    source: bytes | IO[bytes],
    *,
    max_seconds: float,
    should_stop: ShouldStop | None = None,
) -> Audio:
    """Decode `source` (bytes or a seekable binary file) or raise AudioError saying why not."""
    if isinstance(source, bytes | bytearray):
        if not source:
            raise AudioError(f"the upload is empty: send an audio file ({ACCEPTED_FORMATS})")
        source = io.BytesIO(source)
    try:
        container = av.open(
            source, mode="r", options={"format_whitelist": _DEMUXERS}, metadata_errors="ignore"
        )
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise _unreadable(f"not a recognised audio file: {_ffmpeg_reason(exc)}") from exc
    with container:
        if not container.streams.audio:
            if container.streams.video:
                raise AudioError(
                    f"the {container.format.name} file is a video without an audio track: there "
                    "is nothing to transcribe; upload a recording with sound"
                )
            raise _unreadable(f"the {container.format.name} file has no audio stream")
        # The header's duration can be wrong; it only lets an obviously long file fail fast.
        if container.duration is not None and container.duration / av.time_base > max_seconds:
            raise _too_long(container.duration / av.time_base, max_seconds)
        samples = _decode_stream(container, max_seconds, should_stop)
    if samples.size == 0:
        raise AudioError("the audio is empty: the file decoded to no samples")
    return Audio(samples)


def _decode_stream(
    container: av.container.InputContainer, max_seconds: float, should_stop: ShouldStop | None
) -> npt.NDArray[np.int16]:
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    limit = int(max_seconds * SAMPLE_RATE)
    chunks: list[npt.NDArray[np.int16]] = []
    total = 0
    next_check = _CHECK_EVERY_SAMPLES
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                chunks.append(chunk)
                total += chunk.size
            if total > limit:
                raise _too_long(total / SAMPLE_RATE, max_seconds, at_least=True)
            if total >= next_check:
                next_check += _CHECK_EVERY_SAMPLES
                if should_stop is not None and should_stop():
                    raise CancelledError("decoding stopped: the client went away")
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    except av.FFmpegError as exc:
        if not chunks:
            raise _unreadable(f"{container.format.name}: {_ffmpeg_reason(exc)}") from exc
        raise _unreadable(
            f"{container.format.name} data is corrupt after {total / SAMPLE_RATE:.1f} s: "
            f"{_ffmpeg_reason(exc)}"
        ) from exc
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    samples = np.concatenate(chunks)
    if samples.size > limit:
        raise _too_long(samples.size / SAMPLE_RATE, max_seconds)
    return samples


def _too_long(seconds: float, max_seconds: float, *, at_least: bool = False) -> AudioError:
    length = f"at least {seconds:.0f}" if at_least else f"{seconds:.0f}"
    return AudioError(
        f"the audio is too long: {length} s, the limit is {max_seconds:.0f} s "
        "(WHISPER_MAX_AUDIO_SECONDS); split the recording or raise the limit"
    )


def _ffmpeg_reason(exc: Exception) -> str:
    # PyAV errors read "[Errno N] Invalid data found when processing input: '<none>'".
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
