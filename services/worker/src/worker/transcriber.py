"""The whisper service as the pipeline sees it: a file in, a transcript out.

Maps the client's errors onto the pipeline's: "unavailable after retries" is transient
(the task retries later), "audio rejected" is permanent (the meeting fails with the reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from whisper_service.client import (
    AudioRejectedError,
    RetryPolicy,
    WhisperClient,
    WhisperUnavailableError,
    Word,
)
from worker.errors import PermanentError, TransientError

# (seconds of audio transcribed so far, seconds of audio in all)
OnProgress = Callable[[float, float], None]


@dataclass(frozen=True)
class TranscriptResult:
    text: str
    segments: list[tuple[float, float, str]]
    language: str | None
    engine: str
    model: str
    audio_seconds: float
    processing_seconds: float
    # Per segment (same order), its words as [start, end, word, probability]; empty lists when
    # the engine does not time words.
    words: list[list[list[float | str]]] = field(default_factory=list)
    language_probability: float | None = None


class Transcriber(Protocol):
    def transcribe(
        self, path: Path, *, vocabulary: str | None = None, on_progress: OnProgress | None = None
    ) -> TranscriptResult: ...

    def close(self) -> None: ...


class WhisperTranscriber:
    def __init__(self, target: str, *, timeout: float, attempts: int, token: str = "") -> None:
        self.target = target
        # The client retries UNAVAILABLE quickly (a restarting server); the task's own,
        # slower retries cover longer outages.
        self.client = WhisperClient(
            target, timeout=timeout, retry=RetryPolicy(attempts=attempts), token=token
        )

    def transcribe(
        self, path: Path, *, vocabulary: str | None = None, on_progress: OnProgress | None = None
    ) -> TranscriptResult:
        try:
            result = self.client.transcribe_file(
                path, vocabulary=vocabulary, on_progress=on_progress
            )
        except WhisperUnavailableError as exc:
            raise TransientError(str(exc)) from exc
        except AudioRejectedError as exc:
            raise PermanentError(f"whisper rejected the audio: {exc}") from exc
        return TranscriptResult(
            text=result.text,
            segments=[(float(s), float(e), str(t)) for s, e, t in result.segments],
            language=result.language or None,
            engine=result.engine,
            model=result.model,
            audio_seconds=float(result.audio_seconds),
            processing_seconds=float(result.processing_seconds),
            words=_words_by_segment(result.words, len(result.segments)),
            # pocketsphinx knows one language and says nothing of certainty: leave it unset.
            language_probability=result.language_probability or None,
        )

    def close(self) -> None:
        self.client.close()


def _words_by_segment(words: list[Word], segments: int) -> list[list[list[float | str]]]:
    grouped: list[list[list[float | str]]] = [[] for _ in range(segments)]
    for word in words:
        if 0 <= word.segment < segments:
            grouped[word.segment].append(
                [round(word.start, 2), round(word.end, 2), word.word, round(word.probability, 3)]
            )
    return grouped
