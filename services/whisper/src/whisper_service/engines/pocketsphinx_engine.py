"""CMU PocketSphinx with the US English model its wheel carries: the offline default.

A pocketsphinx Decoder holds one utterance's search state, so it cannot be shared between
threads: the engine keeps a pool of decoders, one per concurrent transcription.
Long audio is cut into utterances by pocketsphinx's voice-activity Endpointer; each one is
decoded on its own (bounded memory however long the meeting) and becomes a timed segment.
Progress is reported after each utterance and every 30 s of audio within one.
Segments carry no words: pocketsphinx's word posteriors shift with what a reused decoder heard
before, and a transcript must not depend on earlier requests. A vocabulary hint is ignored:
new words would need pronunciations in its dictionary.
"""

from __future__ import annotations

import logging
import queue
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pocketsphinx

from whisper_service.audio import SAMPLE_RATE, Audio, ShouldStop
from whisper_service.engines.base import (
    EngineDescription,
    OnProgress,
    ProgressReporter,
    Segment,
    Transcription,
    normalise_language,
)
from whisper_service.errors import CancelledError, EngineLoadError, InvalidRequestError

log = logging.getLogger(__name__)

NAME = "pocketsphinx"
MODEL = "en-us"
# Tuned with benchmarks/whisper_rtf.py on 60 s of festival speech, 2 cores: capping the active
# HMMs per frame (default 30000) cut the real-time factor by about a third at the same word
# error rate, and bounds the search on noisy audio, where it otherwise explodes.
DECODER_CONFIG: dict[str, object] = {
    "samprate": SAMPLE_RATE,
    "loglevel": "FATAL",
    "maxhmmpf": 3000,
}
# Feed the decoder ~1 s at a time so cancellation is noticed within about a second.
_FEED_BYTES = SAMPLE_RATE * 2
# Within a long utterance, report progress after every this many seconds of audio fed.
_PROGRESS_SECONDS = 30
# Fillers and markers in pocketsphinx word hypotheses that are not words.
_NON_WORDS = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+)$")
_ALT_PRONUNCIATION = re.compile(r"\(\d+\)$")
# An utterance longer than this is split into several segments at its pauses.
_MAX_SEGMENT_SECONDS = 12.0


@dataclass(frozen=True)
class _Word:
    start: float
    end: float
    text: str | None  # None marks a pause


class PocketsphinxEngine:
    def __init__(self, workers: int, decoder_config: dict[str, object] | None = None) -> None:
        """`decoder_config` overrides DECODER_CONFIG (pocketsphinx options, for tuning)."""
        config = {**DECODER_CONFIG, **(decoder_config or {})}
        self._pool: queue.Queue[pocketsphinx.Decoder] = queue.Queue()
        try:
            for _ in range(workers):
                self._pool.put(pocketsphinx.Decoder(**config))
        except (RuntimeError, ValueError) as exc:
            raise EngineLoadError(f"could not load the pocketsphinx English model: {exc}") from exc
        # Live cepstral mean normalisation adapts across utterances; each request starts from
        # the model's initial means so a transcript never depends on earlier requests.
        first = self._pool.get_nowait()
        self._cmn_init: str = first.get_cmn(False)
        self._frame_rate = int(first.config["frate"])  # word times are in frames
        self._pool.put(first)
        self._description = EngineDescription(
            engine=NAME, model=MODEL, device="cpu", compute_type="float32", languages=("en",)
        )

    @property
    def description(self) -> EngineDescription:
        return self._description

    def close(self) -> None:
        while not self._pool.empty():
            self._pool.get_nowait()

    @contextmanager
    def _decoder(self, should_stop: ShouldStop) -> Iterator[pocketsphinx.Decoder]:
        """Borrow a decoder, waiting for a free one for as long as the client still waits."""
        while True:
            try:
                decoder = self._pool.get(timeout=0.1)
                break
            except queue.Empty:
                if should_stop():
                    raise CancelledError("stopped while waiting for a free decoder") from None
        try:
            decoder.set_cmn(self._cmn_init)
            yield decoder
        finally:
            self._pool.put(decoder)

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
        if code not in (None, "en"):
            raise InvalidRequestError(
                f"the pocketsphinx engine only transcribes English ('en'), not {language!r}; "
                "leave language empty, or run WHISPER_ENGINE=faster-whisper with a "
                "multilingual model"
            )
        progress = ProgressReporter(on_progress, audio.seconds)
        progress(0.0)
        segments: list[Segment] = []
        with self._decoder(should_stop) as decoder:
            for start, pcm in _utterances(audio.pcm_bytes()):
                segments += self._decode_utterance(decoder, start, pcm, should_stop, progress)
                progress(start + len(pcm) / (2 * SAMPLE_RATE))
        progress(audio.seconds)
        text = " ".join(s.text for s in segments)
        return Transcription(text=text, segments=segments, language="en")

    def _decode_utterance(
        self,
        decoder: pocketsphinx.Decoder,
        start: float,
        pcm: bytes,
        should_stop: ShouldStop,
        progress: ProgressReporter,
    ) -> list[Segment]:
        decoder.start_utt()
        try:
            for offset in range(0, len(pcm), _FEED_BYTES):
                if should_stop():
                    raise CancelledError("transcription stopped: the client went away")
                decoder.process_raw(pcm[offset : offset + _FEED_BYTES], False, False)
                if offset and offset % (_PROGRESS_SECONDS * _FEED_BYTES) == 0:
                    progress(start + offset / (2 * SAMPLE_RATE))
        finally:
            decoder.end_utt()
        words = [
            _Word(
                start + seg.start_frame / self._frame_rate,
                start + (seg.end_frame + 1) / self._frame_rate,
                None if _NON_WORDS.match(seg.word) else _ALT_PRONUNCIATION.sub("", seg.word),
            )
            for seg in decoder.seg()
        ]
        return _group(words)


def _utterances(pcm: bytes) -> Iterator[tuple[float, bytes]]:
    """Yield (start seconds, speech pcm) for each stretch of speech the VAD finds."""
    endpointer = pocketsphinx.Endpointer(sample_rate=SAMPLE_RATE)
    size = endpointer.frame_bytes
    speech: list[bytes] = []
    start = 0.0
    for offset in range(0, len(pcm), size):
        frame = pcm[offset : offset + size]
        was_in_speech = endpointer.in_speech
        # The last frame (whole or partial) goes to end_stream, which flushes open speech.
        last = offset + size >= len(pcm)
        out = endpointer.end_stream(frame) if last else endpointer.process(frame)
        if out is None:
            continue
        if not was_in_speech:
            start = endpointer.speech_start
        speech.append(out)
        if last or not endpointer.in_speech:
            yield start, b"".join(speech)
            speech.clear()


def _group(words: list[_Word]) -> list[Segment]:
    """One segment per utterance, split at pauses when it runs longer than a subtitle line."""
    segments: list[Segment] = []
    current: list[_Word] = []

    def flush() -> None:
        if current:
            text = " ".join(w.text for w in current if w.text)
            segments.append(Segment(round(current[0].start, 2), round(current[-1].end, 2), text))
            current.clear()

    for word in words:
        if word.text is None:
            if current and word.start - current[0].start > _MAX_SEGMENT_SECONDS:
                flush()
            continue
        current.append(word)
    flush()
    return segments


def load(workers: int) -> PocketsphinxEngine:
    started = time.perf_counter()
    engine = PocketsphinxEngine(workers)
    log.info(
        "pocketsphinx loaded",
        extra={"decoders": workers, "seconds": round(time.perf_counter() - started, 2)},
    )
    return engine
