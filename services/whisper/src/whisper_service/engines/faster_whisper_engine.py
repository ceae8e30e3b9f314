"""faster-whisper (CTranslate2) loaded from a local model directory; no model hub at run time.

The model is loaded once and shared: CTranslate2 serialises or parallelises concurrent
`transcribe` calls itself (num_workers = WHISPER_WORKERS). A GPU that was asked for and is
missing is an error, never a silent fall back to the CPU.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from whisper_service.audio import Audio, ShouldStop
from whisper_service.engines.base import (
    EngineDescription,
    Segment,
    Transcription,
    normalise_language,
)
from whisper_service.errors import (
    CancelledError,
    EngineConfigError,
    EngineLoadError,
    InvalidRequestError,
)

log = logging.getLogger(__name__)

NAME = "faster-whisper"
PULL_HINT = "run `uv run inv models.pull --env dev` or copy a CTranslate2 model directory there"
# Without tokenizer.json faster-whisper downloads one from the model hub: require it instead.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")


def has_model(model_dir: Path) -> bool:
    """What `WHISPER_ENGINE=auto` looks at: a CTranslate2 model file in the directory."""
    return (model_dir / "model.bin").is_file()


def check_model_dir(model_dir: Path) -> None:
    if not has_model(model_dir):
        where = model_dir.resolve()
        reason = "does not exist" if not model_dir.exists() else "has no model.bin"
        raise EngineConfigError(f"no whisper model in {where} ({reason}): {PULL_HINT}")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise EngineConfigError(
            f"the whisper model in {model_dir.resolve()} is incomplete (missing "
            f"{', '.join(missing)}): {PULL_HINT}"
        )


def check_device(device: str, compute_type: str) -> None:
    """Fail loudly when the device or compute type is not there; never pick another one."""
    import ctranslate2  # heavy: imported only when used

    if device == "cuda":
        try:
            count = ctranslate2.get_cuda_device_count()
        except RuntimeError as exc:  # no CUDA driver/runtime at all
            count, detail = 0, f" ({exc})"
        else:
            detail = ""
        if count == 0:
            raise EngineConfigError(
                f"WHISPER_DEVICE=cuda but no CUDA device is available{detail}: install the "
                "NVIDIA driver and CUDA runtime (and pass the GPU to the container), or set "
                "WHISPER_DEVICE=cpu. Not falling back to the CPU."
            )
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type not in supported | {"auto", "default"}:
        raise EngineConfigError(
            f"WHISPER_COMPUTE_TYPE={compute_type} is not supported on {device}; "
            f"choose one of {', '.join(sorted(supported))}"
        )


class FasterWhisperEngine:
    def __init__(self, model: Any, description: EngineDescription) -> None:
        self._model = model
        self._description = description

    @property
    def description(self) -> EngineDescription:
        return self._description

    def close(self) -> None:
        self._model = None

    def transcribe(
        self, audio: Audio, *, language: str | None, should_stop: ShouldStop
    ) -> Transcription:
        code = normalise_language(language)
        if code is not None and code not in self._description.languages:
            raise InvalidRequestError(
                f"the faster-whisper model {self._description.model} does not know language "
                f"{language!r}; it knows {', '.join(self._description.languages)}"
            )
        # Segments are produced lazily, one 30 s window at a time: stop between windows.
        pieces, info = self._model.transcribe(audio.float32(), language=code, beam_size=5)
        segments: list[Segment] = []
        for piece in pieces:
            if should_stop():
                raise CancelledError("transcription stopped: the client went away")
            text = piece.text.strip()
            if text:
                segments.append(Segment(round(piece.start, 2), round(piece.end, 2), text))
        text = " ".join(s.text for s in segments)
        return Transcription(text=text, segments=segments, language=info.language or code or "")


def load(model_dir: Path, device: str, compute_type: str, workers: int) -> FasterWhisperEngine:
    check_model_dir(model_dir)
    check_device(device, compute_type)
    started = time.perf_counter()
    from faster_whisper import WhisperModel  # heavy: onnxruntime, tokenizers

    try:
        model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            num_workers=workers,
            local_files_only=True,
        )
    except Exception as exc:  # ctranslate2/tokenizers raise assorted types for bad files
        raise EngineLoadError(
            f"could not load the faster-whisper model in {model_dir.resolve()} on {device}: "
            f"{type(exc).__name__}: {exc}. The directory must hold a CTranslate2 Whisper model "
            f"(model.bin, config.json, tokenizer.json): {PULL_HINT}"
        ) from exc
    description = EngineDescription(
        engine=NAME,
        model=model_dir.name,
        device=device,
        compute_type=compute_type,
        languages=tuple(model.supported_languages),
    )
    log.info(
        "faster-whisper loaded",
        extra={
            "model_dir": str(model_dir.resolve()),
            "device": device,
            "compute_type": compute_type,
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
    return FasterWhisperEngine(model, description)
