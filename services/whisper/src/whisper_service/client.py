"""Client of the whisper service, as the worker uses it: a file in, a Transcript out.

Imports only grpc, protobuf and the standard library: the worker installs mi-whisper without
the [server] extra, so av, numpy and the engines are not there (tests/test_client_imports.py).

    with WhisperClient("127.0.0.1:50051", timeout=600) as client:
        transcript = client.transcribe_file("meeting.m4a")
        transcript = client.transcribe_file(
            "meeting.m4a",
            vocabulary="Przybylski, Kubernetes",  # names and jargon to spell right
            on_progress=lambda done, total: print(f"{done:.0f}/{total:.0f} s"),
        )

Failures come as one of two exceptions: WhisperUnavailableError (transient: the service is
down, overloaded, timed out or crashed; retry the work later) and AudioRejectedError
(permanent: this audio will never transcribe; the message says why).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import grpc

from common import service_auth
from whisper_service.proto.whisper.v1 import transcriber_pb2 as pb
from whisper_service.proto.whisper.v1 import transcriber_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0
# Far below the server's per-message limit (WHISPER_MAX_MESSAGE_MB), big enough to be cheap.
CHUNK_BYTES = 256 * 1024
# Statuses that mean "this request can never succeed": retrying later would not help.
_REJECTED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)

T = TypeVar("T")


class WhisperError(Exception):
    """Base of the client's errors."""


class WhisperUnavailableError(WhisperError):
    """Transient: the service could not be reached or did not finish; try again later."""


class AudioRejectedError(WhisperError):
    """Permanent: the service refused this audio (unreadable, empty, too long, too big)."""


# Called with (seconds of audio transcribed so far, seconds of audio in all).
OnProgress = Callable[[float, float], None]


class Segment(NamedTuple):
    start: float
    end: float
    text: str


class Word(NamedTuple):
    start: float
    end: float
    word: str  # with its punctuation, as in the text: "Friday."
    probability: float  # the engine's confidence, 0..1
    segment: int  # index of the segment it belongs to, in Transcript.segments


@dataclass(frozen=True)
class Transcript:
    text: str
    segments: list[Segment]
    language: str
    engine: str
    model: str
    audio_seconds: float
    processing_seconds: float
    device: str = ""
    # Every word of every segment in order (Segment stays a 3-tuple for its callers).
    words: list[Word] = field(default_factory=list)
    # 0..1: 1 when the language was asked for, 0 when there was no speech to tell from.
    language_probability: float = 0.0


@dataclass(frozen=True)
class EngineInfo:
    engine: str
    model: str
    device: str
    compute_type: str
    ready: bool
    languages: list[str]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for UNAVAILABLE: 0.5, 1, 2, 4 s (+-20 %) with the defaults."""

    attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    multiplier: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.initial_backoff
        for _ in range(self.attempts - 1):
            # Jitter spreads out many workers that lost the service at the same moment.
            yield delay * random.uniform(0.8, 1.2)  # noqa: S311 (not cryptographic)
            delay = min(delay * self.multiplier, self.max_backoff)


class WhisperClient:
    """A channel to one whisper server; thread-safe, reuse it. Close it (or use `with`)."""

    def __init__(
        self,
        target: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        retry: RetryPolicy | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        token: str = "",
    ) -> None:
        self.target = target
        # The service credential (SERVICE_TOKEN), sent with every call when set.
        self._metadata = ((service_auth.HEADER, token),) if token else ()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.chunk_bytes = chunk_bytes
        max_backoff_ms = int(self.retry.max_backoff * 1000)
        self._channel = grpc.insecure_channel(
            target,
            options=[
                # Reconnect about as often as we retry, not after gRPC's default 1 s .. 120 s.
                ("grpc.initial_reconnect_backoff_ms", 250),
                ("grpc.min_reconnect_backoff_ms", 250),
                ("grpc.max_reconnect_backoff_ms", max_backoff_ms),
                # A long meeting's transcript with segments can pass gRPC's default 4 MB.
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ],
        )
        self._stub = pb_grpc.TranscriberStub(self._channel)

    def __enter__(self) -> WhisperClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def transcribe_file(
        self,
        path: str | PathLike[str],
        language: str | None = None,
        *,
        vocabulary: str | None = None,
        on_progress: OnProgress | None = None,
    ) -> Transcript:
        """Stream the file to the service and wait (up to `timeout` per attempt) for the text.

        `vocabulary`: names and terms the recording likely contains, so they are spelled
        right (faster-whisper; pocketsphinx ignores it). `on_progress(done_s, total_s)` is
        called from this thread as the server transcribes (TranscribeWithProgress): first
        once the audio is decoded, last with done == total; after a retry it starts again
        from 0. An exception it raises cancels the call and is raised from here.
        """
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no audio file at {file}")
        options = pb.TranscriptionOptions(
            language=language or "", filename=file.name, vocabulary=vocabulary or ""
        )

        def call() -> pb.TranscribeResponse:
            requests = self._requests(file, options)
            if on_progress is None:
                return self._stub.Transcribe(
                    requests, timeout=self.timeout, metadata=self._metadata
                )
            return self._follow(
                self._stub.TranscribeWithProgress(
                    requests, timeout=self.timeout, metadata=self._metadata
                ),
                on_progress,
            )

        response = self._with_retries(call, f"transcribing {file.name}")
        return _transcript(response)

    def _follow(self, events: Any, on_progress: OnProgress) -> pb.TranscribeResponse:
        """The result at the end of a TranscribeWithProgress stream, passing progress on."""
        try:
            for event in events:
                if event.HasField("result"):
                    return event.result
                progress = event.progress
                on_progress(progress.audio_seconds_done, progress.audio_seconds_total)
        except grpc.RpcError:
            raise
        except BaseException:
            events.cancel()  # the caller's callback failed: stop the server's work too
            raise
        raise WhisperUnavailableError(
            f"whisper at {self.target} ended the progress stream without a result"
        )

    def engine_info(self) -> EngineInfo:
        """Which engine, model and device the server runs (ready=False while loading)."""

        def call() -> pb.EngineInfo:
            return self._stub.GetEngineInfo(
                pb.GetEngineInfoRequest(), timeout=min(self.timeout, 10), metadata=self._metadata
            )

        info = self._with_retries(call, "asking for engine info")
        return EngineInfo(
            info.engine,
            info.model,
            info.device,
            info.compute_type,
            info.ready,
            list(info.languages),
        )

    def _requests(
        self, file: Path, options: pb.TranscriptionOptions
    ) -> Iterator[pb.TranscribeRequest]:
        yield pb.TranscribeRequest(options=options)
        with file.open("rb") as stream:
            while chunk := stream.read(self.chunk_bytes):
                yield pb.TranscribeRequest(audio_chunk=chunk)

    def _with_retries(self, call: Callable[[], T], what: str) -> T:
        delays = self.retry.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except grpc.RpcError as exc:
                code, details = _status(exc)
                delay = next(delays, None) if _transient(code, details) else None
                if delay is None:
                    raise self._translate(code, details, what, attempt) from exc
                log.warning(
                    "whisper at %s unavailable (%s), retry %d/%d in %.1f s",
                    self.target,
                    details,
                    attempt,
                    self.retry.attempts - 1,
                    delay,
                )
                time.sleep(delay)

    def _translate(
        self, code: grpc.StatusCode | None, details: str, what: str, attempts: int
    ) -> WhisperError:
        name = code.name if code is not None else "UNKNOWN"
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return WhisperUnavailableError(
                f"{what}: whisper at {self.target} refused the service credential: {details} "
                "(give this process the same SERVICE_TOKEN as whisper)"
            )
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _transient(code, details):
            return WhisperUnavailableError(
                f"{what}: whisper at {self.target} busy after {attempts} attempts: {details}"
            )
        if code in _REJECTED:
            return AudioRejectedError(details or name)
        if code == grpc.StatusCode.UNAVAILABLE:
            return WhisperUnavailableError(
                f"{what}: whisper at {self.target} unavailable after {attempts} attempts: {details}"
            )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return WhisperUnavailableError(
                f"{what}: no answer from whisper at {self.target} within {self.timeout:g} s"
            )
        return WhisperUnavailableError(f"{what}: whisper at {self.target} failed: {name} {details}")


def _transcript(response: pb.TranscribeResponse) -> Transcript:
    return Transcript(
        text=response.text,
        segments=[Segment(s.start_seconds, s.end_seconds, s.text) for s in response.segments],
        language=response.language,
        engine=response.engine,
        model=response.model,
        audio_seconds=response.audio_seconds,
        processing_seconds=response.processing_seconds,
        device=response.device,
        words=[
            Word(w.start_seconds, w.end_seconds, w.word, w.probability, index)
            for index, s in enumerate(response.segments)
            for w in s.words
        ],
        language_probability=response.language_probability,
    )


# What grpc's server answers over its maximum_concurrent_rpcs: busy now, not a bad request.
_CONCURRENCY_LIMIT = "Concurrent RPC limit exceeded"


def _transient(code: grpc.StatusCode | None, details: str) -> bool:
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    return code == grpc.StatusCode.RESOURCE_EXHAUSTED and _CONCURRENCY_LIMIT in details


def _status(exc: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    if isinstance(exc, grpc.Call):
        return exc.code(), exc.details() or ""
    return None, str(exc)
