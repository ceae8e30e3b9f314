"""The whisper.v1.Transcriber service: receive audio, decode it, run the engine.

Every failure leaves as a gRPC status whose message says what was wrong and what to do; the
server carries on. Work stops soon after the client goes away or its deadline passes.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, NoReturn

import grpc

from whisper_service import audio
from whisper_service.config import WhisperSettings
from whisper_service.engines import Engine, OnProgress, Transcription
from whisper_service.errors import (
    ACCEPTED_FORMATS,
    AudioError,
    CancelledError,
    InvalidRequestError,
    UploadTooLargeError,
)
from whisper_service.metrics import Metrics
from whisper_service.proto.whisper.v1 import transcriber_pb2 as pb
from whisper_service.proto.whisper.v1 import transcriber_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

# Streamed uploads stay in memory up to this size, then spill to a temporary file.
_SPOOL_IN_MEMORY_BYTES = 16 * 1024 * 1024


class _EngineNotReadyError(Exception):
    pass


@dataclass(frozen=True)
class _Failure:
    """How an RPC ends when it does not succeed: the status and a message saying why."""

    status: grpc.StatusCode
    message: str


Receive = Callable[[ExitStack], tuple[pb.TranscriptionOptions, bytes | IO[bytes]]]


class TranscriberServicer(pb_grpc.TranscriberServicer):
    def __init__(self, settings: WhisperSettings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        # Set once by the server after loading; None while loading.
        self.engine: Engine | None = None

    # --- RPCs -------------------------------------------------------------------------------

    def Transcribe(  # noqa: N802 (gRPC method names are CamelCase)
        self, request_iterator: Iterator[pb.TranscribeRequest], context: grpc.ServicerContext
    ) -> pb.TranscribeResponse:
        def receive(stack: ExitStack) -> tuple[pb.TranscriptionOptions, IO[bytes]]:
            return self._receive_stream(request_iterator, stack)

        return self._transcribe("Transcribe", context, receive)

    def TranscribeFile(  # noqa: N802
        self, request: pb.TranscribeFileRequest, context: grpc.ServicerContext
    ) -> pb.TranscribeResponse:
        def receive(_: ExitStack) -> tuple[pb.TranscriptionOptions, bytes]:
            return request.options, request.audio

        return self._transcribe("TranscribeFile", context, receive)

    def TranscribeWithProgress(  # noqa: N802
        self, request_iterator: Iterator[pb.TranscribeRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.TranscribeEvent]:
        def receive(stack: ExitStack) -> tuple[pb.TranscriptionOptions, IO[bytes]]:
            return self._receive_stream(request_iterator, stack)

        # The engine reports progress from its own thread; this generator hands the events
        # to gRPC as they come, and the result (or the failure) last.
        events: queue.SimpleQueue[pb.TranscribeEvent | _Failure] = queue.SimpleQueue()

        def on_progress(done: float, total: float) -> None:
            events.put(
                pb.TranscribeEvent(
                    progress=pb.Progress(audio_seconds_done=done, audio_seconds_total=total)
                )
            )

        def work() -> None:
            outcome: pb.TranscribeResponse | _Failure = _Failure(
                grpc.StatusCode.INTERNAL, "transcription failed: the worker thread died"
            )
            try:
                outcome = self._attempt("TranscribeWithProgress", context, receive, on_progress)
            finally:  # whatever happens, the stream below gets its last message
                events.put(
                    outcome if isinstance(outcome, _Failure) else pb.TranscribeEvent(result=outcome)
                )

        threading.Thread(target=work, name="transcribe-progress", daemon=True).start()
        while True:
            event = events.get()
            if isinstance(event, _Failure):
                _abort(context, event.status, event.message)
            yield event
            if event.HasField("result"):
                return

    def GetEngineInfo(  # noqa: N802
        self, request: pb.GetEngineInfoRequest, context: grpc.ServicerContext
    ) -> pb.EngineInfo:
        self._metrics.requests.labels("GetEngineInfo", "OK").inc()
        if self.engine is None:
            return pb.EngineInfo(ready=False)
        d = self.engine.description
        return pb.EngineInfo(
            engine=d.engine,
            model=d.model,
            device=d.device,
            compute_type=d.compute_type,
            ready=True,
            languages=list(d.languages),
        )

    # --- shared path ------------------------------------------------------------------------

    def _transcribe(
        self, method: str, context: grpc.ServicerContext, receive: Receive
    ) -> pb.TranscribeResponse:
        outcome = self._attempt(method, context, receive, None)
        if isinstance(outcome, _Failure):
            _abort(context, outcome.status, outcome.message)
        return outcome

    def _attempt(
        self,
        method: str,
        context: grpc.ServicerContext,
        receive: Receive,
        on_progress: OnProgress | None,
    ) -> pb.TranscribeResponse | _Failure:
        """Run one transcription; every failure becomes the status the client should see."""
        started = time.perf_counter()
        status, message = grpc.StatusCode.OK, ""
        self._metrics.in_flight.inc()
        try:
            return self._run(context, receive, started, on_progress)
        except InvalidRequestError as exc:
            status, message = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
        except UploadTooLargeError as exc:
            status, message = grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
        except _EngineNotReadyError:
            status = grpc.StatusCode.UNAVAILABLE
            message = "the speech engine is still loading; retry in a few seconds"
        except CancelledError as exc:
            remaining = context.time_remaining()
            expired = remaining is not None and remaining <= 0
            status = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
            message = str(exc)
        except Exception as exc:  # a bug or engine crash: answer INTERNAL, keep serving
            log.exception("transcription failed", extra={"method": method})
            status = grpc.StatusCode.INTERNAL
            message = f"transcription failed: {type(exc).__name__}: {exc}"
        finally:
            self._metrics.in_flight.dec()
            self._metrics.requests.labels(method, status.name).inc()
            self._metrics.processing_seconds.labels(method).observe(time.perf_counter() - started)
        if status in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED):
            log.info("request rejected", extra={"method": method, "reason": message})
        return _Failure(status, message)

    def _run(
        self,
        context: grpc.ServicerContext,
        receive: Receive,
        started: float,
        on_progress: OnProgress | None,
    ) -> pb.TranscribeResponse:
        engine = self.engine
        if engine is None:
            raise _EngineNotReadyError

        def should_stop() -> bool:
            return not context.is_active()

        with ExitStack() as stack:
            options, source = receive(stack)
            decoded = audio.decode(
                source, max_seconds=self._settings.max_audio_seconds, should_stop=should_stop
            )
        result = engine.transcribe(
            decoded,
            language=options.language or None,
            should_stop=should_stop,
            vocabulary=options.vocabulary or None,
            on_progress=on_progress,
        )
        description = engine.description
        elapsed = time.perf_counter() - started
        self._metrics.audio_seconds.labels(description.engine).inc(decoded.seconds)
        log.info(
            "transcribed",
            extra={
                "file": options.filename,
                "audio_seconds": round(decoded.seconds, 2),
                "processing_seconds": round(elapsed, 3),
                "engine": description.engine,
                "language": result.language,
            },
        )
        return pb.TranscribeResponse(
            text=result.text,
            segments=_segments(result),
            language=result.language,
            language_probability=result.language_probability,
            engine=description.engine,
            model=description.model,
            device=description.device,
            audio_seconds=decoded.seconds,
            processing_seconds=elapsed,
        )

    def _receive_stream(
        self, request_iterator: Iterator[pb.TranscribeRequest], stack: ExitStack
    ) -> tuple[pb.TranscriptionOptions, IO[bytes]]:
        """Collect the streamed file; the container format may need seeking to decode."""
        spool = stack.enter_context(
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
        )
        options = pb.TranscriptionOptions()
        limit = self._settings.max_stream_bytes
        received = 0
        try:
            for index, request in enumerate(request_iterator):
                kind = request.WhichOneof("payload")
                if kind == "options":
                    if index != 0:
                        raise InvalidRequestError(
                            "options must be the first message of the stream, sent once"
                        )
                    options = request.options
                elif kind == "audio_chunk":
                    received += len(request.audio_chunk)
                    if received > limit:
                        raise UploadTooLargeError(
                            f"the upload is larger than {self._settings.max_stream_mb:g} MB "
                            "(WHISPER_MAX_STREAM_MB); split the recording or raise the limit"
                        )
                    spool.write(request.audio_chunk)
        except grpc.RpcError as exc:  # the client cancelled mid-upload
            raise CancelledError("the upload stopped: the client went away") from exc
        if received == 0:
            raise AudioError(
                "the upload is empty: the stream carried no audio_chunk messages; send an "
                f"audio file ({ACCEPTED_FORMATS}) in chunks after the options"
            )
        spool.seek(0)
        return options, spool


def _segments(result: Transcription) -> list[pb.Segment]:
    return [
        pb.Segment(
            start_seconds=s.start,
            end_seconds=s.end,
            text=s.text,
            words=[
                pb.Word(
                    start_seconds=w.start,
                    end_seconds=w.end,
                    word=w.word,
                    probability=w.probability,
                )
                for w in s.words
            ],
        )
        for s in result.segments
    ]


def _abort(context: grpc.ServicerContext, status: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(status, message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover
