"""The whisper service as the pipeline sees it: a file in, a transcript out.

Maps the client's errors onto the pipeline's: "unavailable after retries" is transient
(the task retries later), "audio rejected" is permanent (the meeting fails with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from whisper_service.client import (
    AudioRejectedError,
    RetryPolicy,
    WhisperClient,
    WhisperUnavailableError,
)
from worker.errors import PermanentError, TransientError


@dataclass(frozen=True)
class TranscriptResult:
    text: str
    segments: list[tuple[float, float, str]]
    language: str | None
    engine: str
    model: str
    audio_seconds: float
    processing_seconds: float


class Transcriber(Protocol):
    def transcribe(self, path: Path) -> TranscriptResult: ...

    def close(self) -> None: ...


class WhisperTranscriber:
    def __init__(self, target: str, *, timeout: float, attempts: int) -> None:
        self.target = target
        # The client retries UNAVAILABLE quickly (a restarting server); the task's own,
        # slower retries cover longer outages.
        self.client = WhisperClient(target, timeout=timeout, retry=RetryPolicy(attempts=attempts))

    def transcribe(self, path: Path) -> TranscriptResult:
        try:
            result = self.client.transcribe_file(path)
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
        )

    def close(self) -> None:
        self.client.close()
