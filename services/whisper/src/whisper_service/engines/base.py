"""The one interface every speech-to-text engine implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from whisper_service.audio import Audio, ShouldStop
from whisper_service.errors import InvalidRequestError


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcription:
    text: str
    segments: list[Segment]
    language: str


@dataclass(frozen=True)
class EngineDescription:
    engine: str
    model: str
    device: str
    compute_type: str
    languages: tuple[str, ...]

    def summary(self) -> str:
        return f"{self.engine} (model {self.model}, device {self.device}, {self.compute_type})"


class Engine(Protocol):
    """Loaded once at start-up; `transcribe` is called from many server threads at once."""

    @property
    def description(self) -> EngineDescription: ...

    def transcribe(
        self, audio: Audio, *, language: str | None, should_stop: ShouldStop
    ) -> Transcription:
        """Transcribe `audio`; raise CancelledError soon after `should_stop()` turns true."""
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
