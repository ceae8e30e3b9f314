"""faster-whisper (CTranslate2) loaded from a local model directory; no model hub at run time.

The model is loaded once and shared: CTranslate2 serialises or parallelises concurrent
`transcribe` calls itself (num_workers = WHISPER_WORKERS). A GPU that was asked for and is
missing is an error, never a silent fall back to the CPU.

How a recording is transcribed (faster_whisper_windows.py cuts it up):
- in windows of about WHISPER_WINDOW_SECONDS, cut where the Silero VAD hears no speech:
  faster-whisper computes its features over all the audio it is given at once (about 3 GB for
  an hour), a window bounds that to a few minutes' worth;
- only the speech the VAD found is decoded (WHISPER_VAD), with word timestamps; the language is
  detected on the first window that has speech and kept for the rest;
- hallucination guards: the VAD (no silence or noise reaches the model), faster-whisper's
  no-speech / log-probability / compression-ratio checks, no conditioning on previous text, and
  dropping segments that repeat the one before (faster_whisper_guards.py).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisper_service.audio import SAMPLE_RATE, Audio, ShouldStop
from whisper_service.engines.base import (
    EngineDescription,
    OnProgress,
    ProgressReporter,
    Segment,
    Transcription,
    Word,
    normalise_language,
)
from whisper_service.engines.faster_whisper_guards import drop_repeated_segments
from whisper_service.errors import (
    CancelledError,
    EngineConfigError,
    EngineLoadError,
    InvalidRequestError,
)

if TYPE_CHECKING:
    from whisper_service.config import WhisperSettings
    from whisper_service.engines.faster_whisper_windows import VadSettings

log = logging.getLogger(__name__)

NAME = "faster-whisper"
PULL_HINT = "run `uv run inv models.pull --env dev` or copy a CTranslate2 model directory there"
# Without tokenizer.json faster-whisper downloads one from the model hub: require it instead.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
# CTranslate2 reads the vocabulary from either file; without one it fails with a vague message.
VOCABULARY_FILES = ("vocabulary.json", "vocabulary.txt")
# faster-whisper silently cuts a hotwords prompt at half the decoder's 448-token context.
MAX_VOCABULARY_TOKENS = 223


def has_model(model_dir: Path) -> bool:
    """What `WHISPER_ENGINE=auto` looks at: a CTranslate2 model file in the directory."""
    return (model_dir / "model.bin").is_file()


def check_model_dir(model_dir: Path) -> None:
    if not has_model(model_dir):
        where = model_dir.resolve()
        reason = "does not exist" if not model_dir.exists() else "has no model.bin"
        raise EngineConfigError(f"no whisper model in {where} ({reason}): {PULL_HINT}")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if not any((model_dir / name).is_file() for name in VOCABULARY_FILES):
        missing.append(" or ".join(VOCABULARY_FILES))
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


@dataclass(frozen=True)
class Decoding:
    """The faster-whisper settings a transcription uses (from WhisperSettings)."""

    beam_size: int
    window_seconds: float
    vad: bool
    vad_settings: VadSettings
    no_speech_threshold: float
    log_prob_threshold: float
    compression_ratio_threshold: float
    condition_on_previous_text: bool
    drop_repeated_segments: bool

    @classmethod
    def from_settings(cls, settings: WhisperSettings) -> Decoding:
        from whisper_service.engines.faster_whisper_windows import VadSettings

        return cls(
            beam_size=settings.beam_size,
            window_seconds=settings.window_seconds,
            vad=settings.vad,
            vad_settings=VadSettings(
                threshold=settings.vad_threshold,
                min_speech_ms=settings.vad_min_speech_ms,
                min_silence_ms=settings.vad_min_silence_ms,
                speech_pad_ms=settings.vad_speech_pad_ms,
            ),
            no_speech_threshold=settings.no_speech_threshold,
            log_prob_threshold=settings.log_prob_threshold,
            compression_ratio_threshold=settings.compression_ratio_threshold,
            condition_on_previous_text=settings.condition_on_previous_text,
            drop_repeated_segments=settings.drop_repeated_segments,
        )


class FasterWhisperEngine:
    def __init__(self, model: Any, description: EngineDescription, decoding: Decoding) -> None:
        self._model = model
        self._description = description
        self._decoding = decoding

    @property
    def description(self) -> EngineDescription:
        return self._description

    @property
    def decoding(self) -> Decoding:
        return self._decoding

    def close(self) -> None:
        self._model = None

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None,
        should_stop: ShouldStop,
        vocabulary: str | None = None,
        on_progress: OnProgress | None = None,
    ) -> Transcription:
        code = normalise_language(language)
        if code is not None and code not in self._description.languages:
            raise InvalidRequestError(
                f"the faster-whisper model {self._description.model} does not know language "
                f"{language!r}; it knows {', '.join(self._description.languages)}"
            )
        from whisper_service.engines.faster_whisper_windows import (  # heavy, see load()
            release_freed_memory,
            windows,
        )

        hotwords = self._hotwords(vocabulary)
        decoding = self._decoding
        progress = ProgressReporter(on_progress, audio.seconds)
        progress(0.0)
        detected: tuple[str, float] | None = (code, 1.0) if code else None
        segments: list[Segment] = []
        for window in windows(
            audio.samples,
            window_samples=int(decoding.window_seconds * SAMPLE_RATE),
            vad=decoding.vad_settings,
            speech_only=decoding.vad,
        ):
            if should_stop():
                raise CancelledError("transcription stopped: the client went away")
            if window.audio.size:
                # The language of the first window with speech holds for the whole recording.
                language_asked = detected[0] if detected else None
                pieces, info = self._model.transcribe(
                    window.audio,
                    language=language_asked,
                    beam_size=decoding.beam_size,
                    word_timestamps=True,
                    vad_filter=False,  # the window holds only speech already (or VAD is off)
                    no_speech_threshold=decoding.no_speech_threshold,
                    log_prob_threshold=decoding.log_prob_threshold,
                    compression_ratio_threshold=decoding.compression_ratio_threshold,
                    condition_on_previous_text=decoding.condition_on_previous_text,
                    # Hotwords go into every 30 s window's prompt; an initial_prompt only
                    # into the first (measured: benchmarks/whisper_rtf.py --vocabulary).
                    hotwords=hotwords,
                )
                offset = window.start / SAMPLE_RATE
                # Segments are produced lazily, one 30 s stretch at a time: stop between them.
                for piece in window.restore_times(pieces):
                    if should_stop():
                        raise CancelledError("transcription stopped: the client went away")
                    segment = _segment(piece, offset)
                    if segment is not None:
                        if detected is None:
                            detected = (info.language, float(info.language_probability))
                        segments.append(segment)
                        progress(segment.end)
            release_freed_memory()
            progress(window.end / SAMPLE_RATE)
        if decoding.drop_repeated_segments:
            segments = drop_repeated_segments(segments)
        progress(audio.seconds)
        language_heard, probability = detected or ("", 0.0)
        return Transcription(
            text=" ".join(s.text for s in segments),
            segments=segments,
            language=language_heard,
            language_probability=round(probability, 4),
        )

    def _hotwords(self, vocabulary: str | None) -> str | None:
        if vocabulary is None or not vocabulary.strip():
            return None
        hint = " ".join(vocabulary.split())
        tokens = len(self._model.hf_tokenizer.encode(" " + hint, add_special_tokens=False).ids)
        if tokens > MAX_VOCABULARY_TOKENS:
            raise InvalidRequestError(
                f"the vocabulary hint is {tokens} tokens long; the model takes at most "
                f"{MAX_VOCABULARY_TOKENS} (roughly 150 words): keep the names and terms this "
                "recording is likely to contain"
            )
        return hint


def _segment(piece: Any, offset: float) -> Segment | None:
    """A faster-whisper segment moved to recording time, or None when it holds no text."""
    text = piece.text.strip()
    if not text:
        return None
    words = tuple(
        Word(
            start=round(float(w.start) + offset, 2),
            end=round(float(max(w.end, w.start)) + offset, 2),
            word=w.word.strip(),
            probability=round(float(w.probability), 3),
        )
        for w in piece.words or ()
        if w.word.strip()
    )
    start, end = float(piece.start) + offset, float(piece.end) + offset
    if words:  # a segment spans its words, whatever its timestamp tokens said
        start, end = min(start, words[0].start), max(end, words[-1].end)
    return Segment(round(start, 2), round(end, 2), text, words)


def _cpu_threads(configured: int) -> int:
    if configured:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load(settings: WhisperSettings) -> FasterWhisperEngine:
    model_dir, device = settings.model_dir, settings.device
    compute_type = settings.effective_compute_type
    check_model_dir(model_dir)
    check_device(device, compute_type)
    started = time.perf_counter()
    from faster_whisper import WhisperModel  # heavy: onnxruntime, tokenizers
    from faster_whisper.vad import get_vad_model

    threads = _cpu_threads(settings.cpu_threads)
    try:
        model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=settings.workers,
            local_files_only=True,
        )
    except Exception as exc:  # ctranslate2/tokenizers raise assorted types for bad files
        raise EngineLoadError(
            f"could not load the faster-whisper model in {model_dir.resolve()} on {device}: "
            f"{type(exc).__name__}: {exc}. The directory must hold a complete CTranslate2 "
            f"Whisper model (model.bin, config.json, tokenizer.json, vocabulary): {PULL_HINT}"
        ) from exc
    try:
        get_vad_model()  # load Silero now: a broken onnxruntime fails at start, not per request
    except Exception as exc:
        raise EngineLoadError(
            f"could not load faster-whisper's Silero VAD model: {type(exc).__name__}: {exc}; "
            "reinstall mi-whisper[server] (faster-whisper, onnxruntime)"
        ) from exc
    description = EngineDescription(
        engine=NAME,
        model=model_dir.name,
        device=device,
        compute_type=compute_type,
        languages=tuple(model.supported_languages),
    )
    decoding = Decoding.from_settings(settings)
    log.info(
        "faster-whisper loaded",
        extra={
            "model_dir": str(model_dir.resolve()),
            "device": device,
            "compute_type": compute_type,
            "cpu_threads": threads,
            "beam_size": decoding.beam_size,
            "vad": decoding.vad,
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
    return FasterWhisperEngine(model, description, decoding)
