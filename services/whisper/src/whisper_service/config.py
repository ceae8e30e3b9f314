"""Settings of the whisper service, read from WHISPER_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.environments import DEV_PORTS
from common.settings import ServerSettings

EngineName = Literal["auto", "faster-whisper", "pocketsphinx"]
Device = Literal["cpu", "cuda"]
# CTranslate2's quantization names; "default" means int8 on cpu and float16 on cuda.
ComputeType = Literal[
    "default",
    "auto",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
]
# 0 asks the OS for a free port (tests use it; the bound port is logged).
PortOrZero = Annotated[int, Field(ge=0, le=65535)]

SERVICE_NAME = "whisper"


class WhisperSettings(ServerSettings):
    """Every key is the upper-case env var name in `validation_alias` (the names users see)."""

    # Field names stay short in code; the env var names carry the WHISPER_ prefix. A class-wide
    # env_prefix would also rename the base class keys (APP_ENV, LOG_LEVEL, LOG_JSON).
    model_config = SettingsConfigDict(validate_by_name=True, validate_by_alias=True)

    host: str = Field(default="127.0.0.1", validation_alias="WHISPER_HOST", min_length=1)
    port: PortOrZero = Field(default=DEV_PORTS["WHISPER_PORT"], validation_alias="WHISPER_PORT")
    metrics_port: PortOrZero = Field(
        default=DEV_PORTS["WHISPER_METRICS_PORT"], validation_alias="WHISPER_METRICS_PORT"
    )
    engine: EngineName = Field(default="auto", validation_alias="WHISPER_ENGINE")
    model_dir: Path = Field(
        default=Path(".models/dev/whisper"), validation_alias="WHISPER_MODEL_DIR"
    )
    device: Device = Field(default="cpu", validation_alias="WHISPER_DEVICE")
    compute_type: ComputeType = Field(
        default="default",
        validation_alias="WHISPER_COMPUTE_TYPE",
        description="faster-whisper's compute type; default is int8 on CPU, float16 on CUDA.",
    )
    max_audio_seconds: float = Field(
        default=4 * 3600,
        gt=0,
        validation_alias="WHISPER_MAX_AUDIO_SECONDS",
        description="Longest recording accepted, in seconds; longer ones are refused.",
    )
    max_message_mb: float = Field(
        default=32,
        gt=0,
        le=2047,
        validation_alias="WHISPER_MAX_MESSAGE_MB",
        description="Largest gRPC message in MB: a TranscribeFile upload or one streamed chunk.",
    )
    max_stream_mb: float = Field(
        default=2048,
        gt=0,
        validation_alias="WHISPER_MAX_STREAM_MB",
        description="Largest streamed upload in MB (spooled to a temp file as it arrives).",
    )
    workers: int = Field(
        default=2,
        ge=1,
        le=64,
        validation_alias="WHISPER_WORKERS",
        description="Transcriptions at once; each holds one engine slot (a decoder).",
    )
    grace_seconds: float = Field(
        default=20,
        ge=0,
        validation_alias="WHISPER_GRACE_SECONDS",
        description="On SIGTERM, how long running transcriptions may take to finish.",
    )

    # --- faster-whisper decoding (pocketsphinx ignores these) -------------------------------
    # Defaults measured with benchmarks/whisper_rtf.py (base model, 2 cores); see its docstring.
    cpu_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        validation_alias="WHISPER_CPU_THREADS",
        description="faster-whisper CPU threads per transcription; 0 uses every usable core.",
    )
    beam_size: int = Field(
        default=5,
        ge=1,
        le=20,
        validation_alias="WHISPER_BEAM_SIZE",
        description="faster-whisper beam width: 1 is greedy (faster), 5 is more accurate.",
    )
    # 120 s: an hour grew the service by 426 MB (1.8x its float32 size; 300 s: ~2.2x) at the
    # same CPU time as 300 s; 60 s cost 11 % more CPU (benchmarks/whisper_memory.py).
    window_seconds: float = Field(
        default=120,
        ge=60,
        le=3600,
        validation_alias="WHISPER_WINDOW_SECONDS",
        description="Long audio is transcribed in windows of about this many seconds, cut at "
        "silences, so memory stays bounded however long the recording.",
    )
    vad: bool = Field(
        default=True,
        validation_alias="WHISPER_VAD",
        description="Drop non-speech with Silero VAD before faster-whisper decodes: faster, and "
        "no text invented over silence or noise.",
    )
    vad_threshold: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        validation_alias="WHISPER_VAD_THRESHOLD",
        description="Silero VAD speech probability above which audio counts as speech.",
    )
    vad_min_speech_ms: int = Field(
        default=250,
        ge=0,
        validation_alias="WHISPER_VAD_MIN_SPEECH_MS",
        description="Speech shorter than this (clicks, coughs) is dropped by the VAD.",
    )
    vad_min_silence_ms: int = Field(
        default=2000,
        ge=0,
        validation_alias="WHISPER_VAD_MIN_SILENCE_MS",
        description="Pauses shorter than this stay in the audio (natural speech keeps flowing).",
    )
    vad_speech_pad_ms: int = Field(
        default=400,
        ge=0,
        validation_alias="WHISPER_VAD_SPEECH_PAD_MS",
        description="Audio kept on each side of detected speech, so word edges are not cut.",
    )
    no_speech_threshold: float = Field(
        default=0.6,
        ge=0,
        le=1,
        validation_alias="WHISPER_NO_SPEECH_THRESHOLD",
        description="A 30 s window whose no-speech probability is above this (and whose text "
        "is unlikely, see WHISPER_LOG_PROB_THRESHOLD) is treated as silence.",
    )
    log_prob_threshold: float = Field(
        default=-1.0,
        le=0,
        validation_alias="WHISPER_LOG_PROB_THRESHOLD",
        description="Decoded text with an average log probability below this is retried at a "
        "higher temperature, and dropped if the window also looks like silence.",
    )
    compression_ratio_threshold: float = Field(
        default=2.4,
        gt=1,
        validation_alias="WHISPER_COMPRESSION_RATIO_THRESHOLD",
        description="Decoded text that gzip compresses better than this (repetition loops) is "
        "retried at a higher temperature.",
    )
    condition_on_previous_text: bool = Field(
        default=False,
        validation_alias="WHISPER_CONDITION_ON_PREVIOUS_TEXT",
        description="Prompt each 30 s window with the text before it: more consistent style, "
        "but one hallucination can then repeat for minutes (off by default).",
    )
    drop_repeated_segments: bool = Field(
        default=True,
        validation_alias="WHISPER_DROP_REPEATED_SEGMENTS",
        description="Drop a segment whose text (nearly) repeats the one before it, a common "
        "Whisper failure on long audio.",
    )

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * 1024 * 1024)

    @property
    def max_stream_bytes(self) -> int:
        return int(self.max_stream_mb * 1024 * 1024)

    @property
    def effective_compute_type(self) -> str:
        if self.compute_type != "default":
            return self.compute_type
        return "float16" if self.device == "cuda" else "int8"


@lru_cache
def get_settings() -> WhisperSettings:
    """The process-wide settings; raises pydantic.ValidationError on bad config."""
    return WhisperSettings()
