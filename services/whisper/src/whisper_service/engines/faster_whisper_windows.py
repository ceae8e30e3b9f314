"""Cut a recording into windows of a few minutes at silences, for faster-whisper.

faster-whisper computes the log-Mel features of all the audio it is given at once (an hour
needs about 3 GB) and so does its Silero VAD (about 0.7 GB): bounded windows keep the memory a
transcription needs to a few minutes' worth of audio, however long the recording is. A window
ends where the VAD hears no speech, so no word is cut in two.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper.transcribe import restore_speech_timestamps
from faster_whisper.vad import VadOptions, get_speech_timestamps

from whisper_service.audio import SAMPLE_RATE

# The VAD splits longer speech at a short pause (or, failing one, hard) once it reaches this
# length, so a window of at least twice this length can always be cut before its last chunk.
MAX_CHUNK_SECONDS = 30
# The last second of a window is looked at again by the next one: speech that begins right at
# the edge may not have raised the VAD's probability there yet.
_EDGE_SAMPLES = SAMPLE_RATE


def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None elsewhere (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Give the memory a window's arrays held back to the OS.

    glibc raises its mmap threshold after large frees (up to 32 MB), so a window's features
    and VAD arrays come from the heap, whose freed pages stay resident. malloc_trim returns
    every free page: an idle server after a transcription went from 400 to 285 MB resident,
    and an hour's peak came down by 36 MB (benchmarks/whisper_memory.py).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass(frozen=True)
class VadSettings:
    threshold: float
    min_speech_ms: int
    min_silence_ms: int
    speech_pad_ms: int

    def options(self) -> VadOptions:
        return VadOptions(
            threshold=self.threshold,
            min_speech_duration_ms=self.min_speech_ms,
            min_silence_duration_ms=self.min_silence_ms,
            speech_pad_ms=self.speech_pad_ms,
            max_speech_duration_s=MAX_CHUNK_SECONDS,
        )


@dataclass(frozen=True)
class Window:
    """Samples [start, end) of the recording, and what of them to decode."""

    start: int
    end: int
    # float32 at SAMPLE_RATE: the window's speech joined together, or all of it (VAD off).
    audio: npt.NDArray[np.float32]
    # The speech chunks `audio` was joined from (samples from `start`); None: `audio` is all.
    speech: list[dict[str, int]] | None

    def restore_times(self, segments: Iterable[Any]) -> Iterable[Any]:
        """faster-whisper segments with times in the window instead of in `audio`."""
        if self.speech is None:
            return segments
        return restore_speech_timestamps(segments, self.speech, SAMPLE_RATE)


def windows(
    samples: npt.NDArray[np.int16], *, window_samples: int, vad: VadSettings, speech_only: bool
) -> Iterator[Window]:
    """Consecutive windows covering `samples`, each at most `window_samples` long."""
    options = vad.options()
    total = len(samples)
    start = 0
    while start < total:
        end = min(start + window_samples, total)
        audio = samples[start:end].astype(np.float32)
        audio *= np.float32(1 / 32768)  # in place: one window-sized copy, not two
        speech: list[dict[str, int]] = get_speech_timestamps(audio, options)
        cut = len(audio)
        if end < total:
            last = speech[-1] if speech else None
            if last is None or last["end"] < cut - _EDGE_SAMPLES:
                cut -= _EDGE_SAMPLES
            elif last["start"] > 0:  # speech runs on past the edge: leave it to the next window
                speech.pop()
                cut = last["start"]
            # else one chunk fills the window, which MAX_CHUNK_SECONDS rules out: take it all.
        if speech_only:
            parts = [audio[chunk["start"] : chunk["end"]] for chunk in speech]
            decoded = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
            yield Window(start, start + cut, decoded, speech)
        else:
            yield Window(start, start + cut, audio[:cut], None)
        start += cut
