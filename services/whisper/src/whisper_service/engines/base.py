"""The one interface every speech-to-text engine implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from whisper_service.audio import Audio, ShouldStop
from whisper_service.errors import InvalidRequestError

# Called with (seconds of audio done, seconds of audio in total) as transcription advances.
OnProgress = Callable[[float, float], None]


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    # The engine's confidence in this word, 0..1.
    probability: float


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    # In order, each inside [start, end]; empty when the engine gives no word timings.
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcription:
    text: str
    segments: list[Segment]
    language: str
    # How sure the engine is of `language`: 1.0 when it was asked for (or the only one it
    # knows), 0.0 when there was no speech to tell from.
    language_probability: float = 1.0


@dataclass(frozen=True)
class EngineDescription:
    engine: str
    model: str
    device: str
    compute_type: str
    languages: tuple[str, ...]

    def summary(self) -> str:
        return f"{self.engine} (model {self.model}, device {self.device}, {self.compute_type})"


class ProgressReporter:
    """Passes (done, total) seconds to an OnProgress callback, never going backwards."""

    def __init__(self, on_progress: OnProgress | None, total: float) -> None:
        self._on_progress = on_progress
        self._total = total
        self._done = -1.0

    def __call__(self, done: float) -> None:
        done = min(max(float(done), self._done, 0.0), self._total)
        if self._on_progress is not None and done > self._done:
            self._on_progress(round(done, 2), round(self._total, 2))
        self._done = done


class Engine(Protocol):
    """Loaded once at start-up; `transcribe` is called from many server threads at once."""

    @property
    def description(self) -> EngineDescription: ...

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None,
        should_stop: ShouldStop,
        vocabulary: str | None = None,
        on_progress: OnProgress | None = None,
    ) -> Transcription:
        """Transcribe `audio`; raise CancelledError soon after `should_stop()` turns true.

        `vocabulary` hints names and jargon to expect (engines that cannot use it ignore it);
        `on_progress` is called from the transcribing thread as audio is done, ending with
        (total, total).
        """
        ...

    def close(self) -> None: ...


def normalise_language(language: str | None) -> str | None:
    """'en-US', 'EN', 'en_gb' -> 'en'; '' -> None (detect)."""
    if not language or not language.strip():
        return None
    code = language.strip().lower().replace("_", "-").split("-", 1)[0]
    if not code.isalpha() or not 2 <= len(code) <= 3:
        raise InvalidRequestError(
            f"language {language!r} is not an ISO 639-1 code such as 'en'; "
            "leave it empty to detect the language"
        )
    return code
