"""Speech-to-text engines behind one interface, chosen by WHISPER_ENGINE."""

from __future__ import annotations

import logging

from whisper_service.config import WhisperSettings
from whisper_service.engines import faster_whisper_engine, pocketsphinx_engine
from whisper_service.engines.base import (
    Engine,
    EngineDescription,
    OnProgress,
    Segment,
    Transcription,
    Word,
)
from whisper_service.errors import EngineConfigError

__all__ = [
    "Engine",
    "EngineDescription",
    "OnProgress",
    "Segment",
    "Transcription",
    "Word",
    "choose",
    "load",
]

log = logging.getLogger(__name__)


def choose(settings: WhisperSettings) -> str:
    """The engine to run: `auto` means faster-whisper when a model is there, else pocketsphinx."""
    if settings.engine != "auto":
        return settings.engine
    if faster_whisper_engine.has_model(settings.model_dir):
        return faster_whisper_engine.NAME
    log.info(
        "no whisper model found, using pocketsphinx",
        extra={"model_dir": str(settings.model_dir.resolve())},
    )
    return pocketsphinx_engine.NAME


def load(settings: WhisperSettings) -> Engine:
    """Load the chosen engine once; raises EngineError saying what to do when it cannot."""
    name = choose(settings)
    if name == faster_whisper_engine.NAME:
        return faster_whisper_engine.load(settings)
    if settings.device == "cuda":
        # Running on the CPU when a GPU was asked for would be a silent fallback.
        raise EngineConfigError(
            f"WHISPER_DEVICE=cuda needs the faster-whisper engine, but {name} was chosen "
            f"(WHISPER_ENGINE={settings.engine}) and it runs on the CPU only: put a model in "
            f"{settings.model_dir.resolve()} (`uv run inv models.pull --env dev`) or set "
            "WHISPER_DEVICE=cpu"
        )
    return pocketsphinx_engine.load(settings.workers)
