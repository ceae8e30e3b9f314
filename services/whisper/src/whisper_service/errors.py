"""Errors the server turns into gRPC statuses, and the engines' start-up errors."""

from __future__ import annotations

ACCEPTED_FORMATS = (
    "WAV, MP3, M4A/AAC, OGG/Opus, WebM, FLAC, or an MP4/MOV/MKV/WebM video with an audio track"
)


class InvalidRequestError(Exception):
    """The request can never succeed as sent (INVALID_ARGUMENT); the message says why."""


class AudioError(InvalidRequestError):
    """The audio is unusable: unreadable, empty or too long."""


class UploadTooLargeError(Exception):
    """A streamed upload went past WHISPER_MAX_STREAM_MB (RESOURCE_EXHAUSTED)."""


class CancelledError(Exception):
    """The client went away or its deadline passed: work stopped early on purpose."""


class EngineError(Exception):
    """The configured engine cannot start; the message says what to do."""


class EngineConfigError(EngineError):
    """The configuration asks for something this machine does not have (model, GPU)."""


class EngineLoadError(EngineError):
    """The model files are there but the engine failed to load them."""
