from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TranscriptionOptions(_message.Message):
    __slots__ = ("language", "filename", "vocabulary")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    language: str
    filename: str
    vocabulary: str
    def __init__(self, language: _Optional[str] = ..., filename: _Optional[str] = ..., vocabulary: _Optional[str] = ...) -> None: ...

class TranscribeRequest(_message.Message):
    __slots__ = ("options", "audio_chunk")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CHUNK_FIELD_NUMBER: _ClassVar[int]
    options: TranscriptionOptions
    audio_chunk: bytes
    def __init__(self, options: _Optional[_Union[TranscriptionOptions, _Mapping]] = ..., audio_chunk: _Optional[bytes] = ...) -> None: ...

class TranscribeFileRequest(_message.Message):
    __slots__ = ("options", "audio")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    options: TranscriptionOptions
    audio: bytes
    def __init__(self, options: _Optional[_Union[TranscriptionOptions, _Mapping]] = ..., audio: _Optional[bytes] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("start_seconds", "end_seconds", "text", "words")
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    start_seconds: float
    end_seconds: float
    text: str
    words: _containers.RepeatedCompositeFieldContainer[Word]
    def __init__(self, start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., text: _Optional[str] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ...) -> None: ...

class Word(_message.Message):
    __slots__ = ("start_seconds", "end_seconds", "word", "probability")
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WORD_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    start_seconds: float
    end_seconds: float
    word: str
    probability: float
    def __init__(self, start_seconds: _Optional[float] = ..., end_seconds: _Optional[float] = ..., word: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...

class TranscribeResponse(_message.Message):
    __slots__ = ("text", "segments", "language", "engine", "model", "device", "audio_seconds", "processing_seconds", "language_probability")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    text: str
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    language: str
    engine: str
    model: str
    device: str
    audio_seconds: float
    processing_seconds: float
    language_probability: float
    def __init__(self, text: _Optional[str] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., language: _Optional[str] = ..., engine: _Optional[str] = ..., model: _Optional[str] = ..., device: _Optional[str] = ..., audio_seconds: _Optional[float] = ..., processing_seconds: _Optional[float] = ..., language_probability: _Optional[float] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("audio_seconds_done", "audio_seconds_total")
    AUDIO_SECONDS_DONE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SECONDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    audio_seconds_done: float
    audio_seconds_total: float
    def __init__(self, audio_seconds_done: _Optional[float] = ..., audio_seconds_total: _Optional[float] = ...) -> None: ...

class TranscribeEvent(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: TranscribeResponse
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[TranscribeResponse, _Mapping]] = ...) -> None: ...

class GetEngineInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EngineInfo(_message.Message):
    __slots__ = ("engine", "model", "device", "compute_type", "ready", "languages")
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TYPE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    engine: str
    model: str
    device: str
    compute_type: str
    ready: bool
    languages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, engine: _Optional[str] = ..., model: _Optional[str] = ..., device: _Optional[str] = ..., compute_type: _Optional[str] = ..., ready: _Optional[bool] = ..., languages: _Optional[_Iterable[str]] = ...) -> None: ...
