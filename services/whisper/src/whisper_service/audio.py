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


class _SampleBuffer:
    """int16 samples appended into one buffer that grows by doubling.

    Keeping each decoded frame (about 1,000 samples) as its own array and joining them at the
    end costs twice the audio at the peak, and the freed small arrays stay in the allocator's
    heap, which is not given back to the OS: an hour of audio kept ~250 MB resident instead of
    115 MB. One buffer, sized from the container's duration when it has one, needs the audio's
    size once; pages past the end are never touched, so an overestimate costs no memory.
    """

    def __init__(self, expected: int) -> None:
        self._buffer = np.empty(max(expected, SAMPLE_RATE), dtype=np.int16)
        self.size = 0

    def append(self, chunk: npt.NDArray[np.int16]) -> None:
        end = self.size + chunk.size
        if end > len(self._buffer):
            grown = np.empty(max(end, 2 * len(self._buffer)), dtype=np.int16)
            grown[: self.size] = self._buffer[: self.size]
            self._buffer = grown
        self._buffer[self.size : end] = chunk
        self.size = end

    def samples(self) -> npt.NDArray[np.int16]:
        return self._buffer[: self.size]


def _expected_samples(container: av.container.InputContainer, limit: int) -> int:
    """The decoded length the container's header promises (+1 %), capped at the limit."""
    duration = container.duration / av.time_base if container.duration is not None else 0.0
    return min(int(duration * 1.01 * SAMPLE_RATE) + SAMPLE_RATE, limit + SAMPLE_RATE)


def _decode_stream(
    container: av.container.InputContainer, max_seconds: float, should_stop: ShouldStop | None
) -> npt.NDArray[np.int16]:
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    limit = int(max_seconds * SAMPLE_RATE)
    buffer = _SampleBuffer(_expected_samples(container, limit))
    next_check = _CHECK_EVERY_SAMPLES
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                buffer.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
            if buffer.size > limit:
                raise _too_long(buffer.size / SAMPLE_RATE, max_seconds, at_least=True)
            if buffer.size >= next_check:
                next_check += _CHECK_EVERY_SAMPLES
                if should_stop is not None and should_stop():
                    raise CancelledError("decoding stopped: the client went away")
        for out in resampler.resample(None):
            buffer.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    except av.FFmpegError as exc:
        if not buffer.size:
            raise _unreadable(f"{container.format.name}: {_ffmpeg_reason(exc)}") from exc
        raise _unreadable(
            f"{container.format.name} data is corrupt after {buffer.size / SAMPLE_RATE:.1f} s: "
            f"{_ffmpeg_reason(exc)}"
        ) from exc
    if buffer.size > limit:
        raise _too_long(buffer.size / SAMPLE_RATE, max_seconds)
    return buffer.samples()


def _too_long(seconds: float, max_seconds: float, *, at_least: bool = False) -> AudioError:
    length = f"at least {seconds:.0f}" if at_least else f"{seconds:.0f}"
    return AudioError(
        f"the audio is too long: {length} s, the limit is {max_seconds:.0f} s "
        "(WHISPER_MAX_AUDIO_SECONDS); split the recording or raise the limit"
    )


def _ffmpeg_reason(exc: Exception) -> str:
    # PyAV errors read "[Errno N] Invalid data found when processing input: '<none>'".
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
