"""The faster-whisper engine on a real Whisper model (see conftest's whisper_model_dir).

Each transcription costs a second or two, so what the gRPC tests already show on the same
model (festival speech punctuated, a vocabulary hint, video input) is not repeated here.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from whisper_service import engines
from whisper_service.audio import SAMPLE_RATE, Audio, decode
from whisper_service.config import WhisperSettings
from whisper_service.engines import Segment, Transcription
from whisper_service.engines.base import Word
from whisper_service.engines.faster_whisper_engine import FasterWhisperEngine
from whisper_service.engines.faster_whisper_guards import drop_repeated_segments, is_repeat
from whisper_service.engines.faster_whisper_windows import VadSettings, windows
from whisper_service.errors import CancelledError, EngineLoadError, InvalidRequestError


def never() -> bool:
    return False


def load_audio(path: Path) -> Audio:
    return decode(path.read_bytes(), max_seconds=600)


def settings(model_dir: Path, **values: object) -> WhisperSettings:
    return WhisperSettings(engine="faster-whisper", model_dir=model_dir, workers=1, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def whisper(whisper_model_dir: Path) -> Iterator[FasterWhisperEngine]:
    engine = engines.load(settings(whisper_model_dir))
    assert isinstance(engine, FasterWhisperEngine)
    yield engine
    engine.close()


def with_silences(pieces: list[np.ndarray], gap_seconds: float) -> np.ndarray:
    gap = np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.int16)
    return np.concatenate([part for piece in pieces for part in (piece, gap)])


# --- what it hears --------------------------------------------------------------------------


def test_german_is_detected_with_its_probability(
    whisper: FasterWhisperEngine, german_wav: Path
) -> None:
    result = whisper.transcribe(load_audio(german_wav), language=None, should_stop=never)
    assert result.language == "de"
    assert 0.5 < result.language_probability <= 1
    assert "Guten Morgen" in result.text, result.text


@pytest.mark.parametrize("language", ["xx", "tlh"])
def test_a_language_the_model_does_not_know_is_refused(
    whisper: FasterWhisperEngine, alice_wav: Path, language: str
) -> None:
    with pytest.raises(InvalidRequestError, match=f"does not know language '{language}'"):
        whisper.transcribe(load_audio(alice_wav), language=language, should_stop=never)


@pytest.mark.parametrize("kind", ["silence", "white", "pink", "brown", "room"])
def test_silence_and_noise_give_an_empty_transcript(
    whisper: FasterWhisperEngine, kind: str, helpers: type
) -> None:
    samples = np.zeros(30 * SAMPLE_RATE, np.int16) if kind == "silence" else helpers.noise(kind, 30)
    result = whisper.transcribe(Audio(samples), language=None, should_stop=never)
    # Nothing invented ("Thank you.", "Thanks for watching!"), and no language guessed.
    assert result == Transcription(text="", segments=[], language="", language_probability=0.0)


def test_word_timestamps_are_ordered_and_inside_their_segments(
    whisper: FasterWhisperEngine, alice_wav: Path, team_wav: Path, helpers: type
) -> None:
    pieces = [helpers.read_pcm(alice_wav), helpers.read_pcm(team_wav)] * 2
    audio = Audio(with_silences(pieces, 2.5))
    result = whisper.transcribe(audio, language=None, should_stop=never)
    assert len(result.segments) >= 2, result.segments
    previous_end = 0.0
    for segment in result.segments:
        assert segment.words, segment
        assert segment.start <= segment.words[0].start
        assert segment.words[-1].end <= segment.end <= audio.seconds + 0.01
        for word in segment.words:
            assert previous_end <= word.start <= word.end, (word, segment)
            assert 0 <= word.probability <= 1
            previous_end = word.end
        # The words are the segment's text, punctuation included.
        assert " ".join(w.word for w in segment.words) == segment.text
    # The second "Alice" is said after alice, a pause, team and a pause.
    alices = [w for s in result.segments for w in s.words if w.word.startswith("Alice")]
    expected = (len(pieces[0]) + len(pieces[1])) / SAMPLE_RATE + 5.0
    assert len(alices) == 2
    assert alices[1].start == pytest.approx(expected, abs=0.5), alices


def test_without_a_vocabulary_hint_the_name_is_misspelled(
    whisper: FasterWhisperEngine, contract_wav: Path
) -> None:
    # The other half of the proof is in test_faster_whisper_server.py: with
    # vocabulary="Przybylski" sent through the client, the name comes back spelled right.
    plain = whisper.transcribe(load_audio(contract_wav), language=None, should_stop=never)
    assert "contract" in plain.text
    assert "Przybylski" not in plain.text, plain.text  # "Perzo Bilsky"


def test_an_overlong_vocabulary_is_refused(whisper: FasterWhisperEngine, alice_wav: Path) -> None:
    names = ", ".join(f"Name{i}" for i in range(200))
    with pytest.raises(InvalidRequestError, match=r"vocabulary hint is \d+ tokens long"):
        whisper.transcribe(
            load_audio(alice_wav), language=None, should_stop=never, vocabulary=names
        )


def test_progress_is_reported_in_order_up_to_the_total_in_the_language_asked(
    whisper: FasterWhisperEngine, alice_wav: Path, team_wav: Path, helpers: type
) -> None:
    audio = Audio(with_silences([helpers.read_pcm(alice_wav), helpers.read_pcm(team_wav)], 1))
    events: list[tuple[float, float]] = []
    result = whisper.transcribe(
        audio, language="en-GB", should_stop=never, on_progress=lambda d, t: events.append((d, t))
    )
    # A language asked for is used, with probability 1.
    assert (result.language, result.language_probability) == ("en", 1.0)
    done = [d for d, _ in events]
    assert done == sorted(set(done)), events  # strictly increasing
    assert {t for _, t in events} == {round(audio.seconds, 2)}
    assert done[0] == 0 and done[-1] == round(audio.seconds, 2)
    # One event per finished segment in between (alice's ends at 2.8 s).
    assert any(2 < d < 4 for d in done), events


def test_it_stops_when_asked(whisper: FasterWhisperEngine, alice_wav: Path) -> None:
    with pytest.raises(CancelledError):
        whisper.transcribe(load_audio(alice_wav), language=None, should_stop=lambda: True)


def test_long_audio_is_transcribed_window_by_window(
    whisper: FasterWhisperEngine,
    alice_wav: Path,
    team_wav: Path,
    contract_wav: Path,
    helpers: type,
) -> None:
    # 60 s windows over 70 s: the team sentence straddles the first window's end, so the cut
    # has to move back before it; every sentence is heard once, at its own time.
    alice, team, contract = (helpers.read_pcm(p) for p in (alice_wav, team_wav, contract_wav))
    starts = {"Alice": 0.0, "team": 57.5, "contract": 57.5 + len(team) / SAMPLE_RATE + 3.0}
    samples = np.zeros(int(72 * SAMPLE_RATE), dtype=np.int16)
    for key, piece in zip(starts, (alice, team, contract), strict=True):
        at = int(starts[key] * SAMPLE_RATE)
        samples[at : at + len(piece)] = piece
    audio = Audio(samples)
    windowed = FasterWhisperEngine(
        whisper._model, whisper.description, replace(whisper.decoding, window_seconds=60)
    )
    events: list[float] = []
    result = windowed.transcribe(
        audio, language=None, should_stop=never, on_progress=lambda d, _: events.append(d)
    )
    assert [s.text.count("Alice") for s in result.segments] == [1, 0, 0], result.segments
    assert "The team agreed to hire two new engineers" in result.segments[1].text
    assert "Please send" in result.segments[2].text
    for segment, start in zip(result.segments, starts.values(), strict=True):
        assert segment.start == pytest.approx(start, abs=0.3), (segment, start)
    assert events == sorted(events) and events[-1] == round(audio.seconds, 2)


# --- windows, guards, model files -------------------------------------------------------------

VAD = VadSettings(threshold=0.5, min_speech_ms=250, min_silence_ms=2000, speech_pad_ms=400)


def test_windows_cover_the_audio_and_are_cut_only_in_pauses(
    alice_wav: Path, team_wav: Path, helpers: type
) -> None:
    pieces = [helpers.read_pcm(alice_wav), helpers.read_pcm(team_wav)] * 18  # 150 s
    samples = with_silences(pieces, 1.0)
    spoken, position = [], 0
    for piece in pieces:
        spoken.append((position, position + len(piece)))
        position += len(piece) + SAMPLE_RATE
    size = 60 * SAMPLE_RATE
    cuts = list(windows(samples, window_samples=size, vad=VAD, speech_only=True))
    assert len(cuts) >= 3
    assert cuts[0].start == 0 and cuts[-1].end == len(samples)
    for before, after in itertools.pairwise(cuts):
        assert before.end == after.start
        assert not any(start < before.end < end for start, end in spoken), before.end
    for window in cuts:
        assert window.end - window.start <= size
        assert window.speech is not None
        # Only speech is decoded: less than the window, more than the sentences in it.
        assert window.audio.size < window.end - window.start
        inside = sum(
            min(e, window.end) - max(s, window.start)
            for s, e in spoken
            if s < window.end and e > window.start
        )
        assert window.audio.size >= inside


def test_windows_without_vad_filtering_decode_everything(helpers: type, alice_wav: Path) -> None:
    samples = with_silences([helpers.read_pcm(alice_wav)] * 30, 1.0)
    cuts = list(windows(samples, window_samples=60 * SAMPLE_RATE, vad=VAD, speech_only=False))
    assert sum(w.audio.size for w in cuts) == len(samples)
    assert all(w.speech is None for w in cuts)


def test_silence_makes_windows_with_nothing_to_decode() -> None:
    samples = np.zeros(150 * SAMPLE_RATE, dtype=np.int16)
    cuts = list(windows(samples, window_samples=60 * SAMPLE_RATE, vad=VAD, speech_only=True))
    assert [w.audio.size for w in cuts] == [0] * len(cuts)
    assert cuts[-1].end == len(samples)


@pytest.mark.parametrize(
    ("previous", "text", "repeat"),
    [
        ("Thank you.", "Thank you.", True),
        ("Thank you.", "thank you!", True),
        ("We will move the release to July.", "We will move the release to July", True),
        (
            "We will move the release to the second week of July.",
            "We will move the release to the second week of June.",
            True,
        ),
        ("Alice will send the report.", "Bob will book a room.", False),
        ("Thank you.", "Thank you. Thank you. Thank you.", False),
        ("", "", False),
    ],
)
def test_is_repeat(previous: str, text: str, repeat: bool) -> None:
    assert is_repeat(previous, text) is repeat


def _heard(start: float, text: str, probability: float) -> Segment:
    words = tuple(
        Word(start + i * 0.1, start + i * 0.1 + 0.1, word, probability)
        for i, word in enumerate(text.split())
    )
    return Segment(start, start + 0.9, text, words)


def test_unsure_repeats_are_dropped_keeping_the_first() -> None:
    said = [
        ("Hello everyone.", 0.9),
        ("Thank you.", 0.9),
        ("Thank you.", 0.3),  # the model stuck in a loop: unsure
        ("Thank you!", 0.2),
        ("Bye.", 0.9),
        ("Thank you.", 0.3),  # not after itself: kept
    ]
    kept = drop_repeated_segments([_heard(float(i), t, p) for i, (t, p) in enumerate(said)])
    assert [(s.start, s.text) for s in kept] == [
        (0.0, "Hello everyone."),
        (1.0, "Thank you."),
        (4.0, "Bye."),
        (5.0, "Thank you."),
    ]


def test_a_sentence_really_said_twice_is_kept() -> None:
    recap = "Alice will send the budget report by Friday."
    kept = drop_repeated_segments([_heard(0.0, recap, 0.92), _heard(4.0, recap, 0.9)])
    assert [s.start for s in kept] == [0.0, 4.0]
    untimed = [Segment(0.0, 1.0, "Thank you."), Segment(1.0, 2.0, "Thank you.")]
    assert len(drop_repeated_segments(untimed)) == 1  # no word confidence: the old rule


def model_copy(source: Path, target: Path, model_bytes: bytes | None = None) -> Path:
    target.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(source / name, target / name)
    if model_bytes is not None:
        (target / "model.bin").write_bytes(model_bytes)
    return target


def test_a_truncated_model_bin_fails_to_load_saying_so(
    whisper_model_dir: Path, tmp_path: Path
) -> None:
    with (whisper_model_dir / "model.bin").open("rb") as f:
        head = f.read(20_000_000)  # an interrupted download or a missing second part
    broken = model_copy(whisper_model_dir, tmp_path / "model", head)
    with pytest.raises(EngineLoadError) as info:
        engines.load(settings(broken))
    message = str(info.value)
    assert "could not load the faster-whisper model" in message
    assert "invalid payload size" in message or "end of file" in message.lower()
    assert "inv models.pull" in message
