"""The engines themselves: pocketsphinx transcribes; faster-whisper up to model loading.

(faster-whisper transcribing with a real model: test_faster_whisper.py.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from whisper_service import engines
from whisper_service.audio import Audio, decode
from whisper_service.config import ComputeType, WhisperSettings
from whisper_service.engines.pocketsphinx_engine import PocketsphinxEngine
from whisper_service.errors import (
    CancelledError,
    EngineConfigError,
    EngineLoadError,
    InvalidRequestError,
)


def never() -> bool:
    return False


def load_audio(path: Path) -> Audio:
    return decode(path.read_bytes(), max_seconds=600)


@pytest.fixture(scope="module")
def sphinx() -> Iterator[PocketsphinxEngine]:
    engine = PocketsphinxEngine(workers=2)
    yield engine
    engine.close()


def test_pocketsphinx_hears_the_keywords(
    sphinx: PocketsphinxEngine, alice_wav: Path, helpers: type
) -> None:
    result = sphinx.transcribe(load_audio(alice_wav), language=None, should_stop=never)
    assert result.language == "en"
    for word in helpers.alice_words:
        assert word in result.text.split(), result.text


def test_pocketsphinx_segments_are_timed_in_order(
    sphinx: PocketsphinxEngine, make_speech: Callable[[float], Path], helpers: type
) -> None:
    audio = load_audio(make_speech(14))
    result = sphinx.transcribe(audio, language="en-US", should_stop=never)
    # Festival pauses between sentences: one segment per sentence, four sentences.
    assert len(result.segments) >= 4
    previous_end = 0.0
    for segment in result.segments:
        assert previous_end <= segment.start < segment.end <= audio.seconds + 0.01
        assert segment.text
        previous_end = segment.end
    assert result.text == " ".join(s.text for s in result.segments)
    # The second sentence starts where team.wav starts, after alice.wav's 3.44 s.
    team = next(s for s in result.segments if "engineers" in s.text)
    assert 3.4 < team.start < 4.5
    assert "quarter" in team.text


def test_pocketsphinx_results_do_not_depend_on_earlier_requests(
    alice_wav: Path, team_wav: Path
) -> None:
    engine = PocketsphinxEngine(workers=1)  # one decoder: every call reuses it
    try:
        team = load_audio(team_wav)
        first = engine.transcribe(team, language=None, should_stop=never)
        # A muffled recording in between shifts pocketsphinx's running cepstral means.
        alice = load_audio(alice_wav).samples
        muffled = Audio(np.convolve(alice, np.ones(8) / 8, mode="same").astype(np.int16))
        for _ in range(2):
            engine.transcribe(muffled, language=None, should_stop=never)
        again = engine.transcribe(team, language=None, should_stop=never)
        assert again == first
    finally:
        engine.close()


def test_pocketsphinx_refuses_other_languages(sphinx: PocketsphinxEngine, alice_wav: Path) -> None:
    with pytest.raises(InvalidRequestError, match="only transcribes English"):
        sphinx.transcribe(load_audio(alice_wav), language="fr", should_stop=never)


@pytest.mark.slow
def test_pocketsphinx_is_safe_from_many_threads(
    sphinx: PocketsphinxEngine, alice_wav: Path, team_wav: Path
) -> None:
    # More concurrent calls than decoders: each waits for its own decoder, none mixes audio.
    jobs = [(alice_wav, "budget"), (team_wav, "engineers")] * 3
    audios = {path: load_audio(path) for path, _ in jobs}
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(
            pool.map(
                lambda job: sphinx.transcribe(audios[job[0]], language=None, should_stop=never),
                jobs,
            )
        )
    for (path, word), result in zip(jobs, results, strict=True):
        assert word in result.text, (path.name, result.text)
        assert ("budget" in result.text) != ("engineers" in result.text)


def test_pocketsphinx_stops_soon_after_being_asked(
    sphinx: PocketsphinxEngine, make_speech: Callable[[float], Path]
) -> None:
    audio = load_audio(make_speech(40))
    stop_at = time.monotonic() + 0.5
    started = time.monotonic()
    with pytest.raises(CancelledError):
        sphinx.transcribe(audio, language=None, should_stop=lambda: time.monotonic() > stop_at)
    # The whole clip takes several seconds; stopping happens within about a second.
    assert time.monotonic() - started < 2.0
    # And the decoder went back to the pool in a usable state.
    short = load_audio(make_speech(3))
    assert "budget" in sphinx.transcribe(short, language=None, should_stop=never).text


def test_pocketsphinx_silence_gives_an_empty_transcript(sphinx: PocketsphinxEngine) -> None:
    silence = Audio(np.zeros(16000 * 3, dtype=np.int16))
    result = sphinx.transcribe(silence, language=None, should_stop=never)
    assert (result.text, result.segments) == ("", [])


# --- choosing and loading -----------------------------------------------------------------


def fake_model_dir(path: Path, *, tokenizer: bool = True, vocabulary: bool = True) -> Path:
    """Files named like a CTranslate2 model, with junk inside."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.bin").write_bytes(b"definitely not a CTranslate2 model")
    (path / "config.json").write_text("{}")
    if tokenizer:
        (path / "tokenizer.json").write_text("{}")
    if vocabulary:
        (path / "vocabulary.json").write_text("[]")
    return path


def settings(**values: object) -> WhisperSettings:
    return WhisperSettings(**values)  # type: ignore[arg-type]


def test_auto_picks_pocketsphinx_without_a_model(tmp_path: Path) -> None:
    assert engines.choose(settings(engine="auto", model_dir=tmp_path / "none")) == "pocketsphinx"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert engines.choose(settings(engine="auto", model_dir=empty)) == "pocketsphinx"


def test_auto_picks_faster_whisper_when_a_model_bin_is_there(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "model")
    assert engines.choose(settings(engine="auto", model_dir=model)) == "faster-whisper"


def test_auto_loads_pocketsphinx_for_real(tmp_path: Path) -> None:
    engine = engines.load(settings(engine="auto", model_dir=tmp_path / "none", workers=1))
    try:
        assert engine.description.engine == "pocketsphinx"
        assert engine.description.device == "cpu"
    finally:
        engine.close()


def test_explicit_engine_wins_over_auto(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "model")
    assert engines.choose(settings(engine="pocketsphinx", model_dir=model)) == "pocketsphinx"


def test_missing_model_dir_names_models_pull(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "whisper"
    with pytest.raises(EngineConfigError) as info:
        engines.load(settings(engine="faster-whisper", model_dir=missing))
    message = str(info.value)
    assert "inv models.pull" in message
    assert str(missing) in message


def test_model_without_tokenizer_is_refused_before_any_download(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "model", tokenizer=False)
    with pytest.raises(EngineConfigError, match=r"missing tokenizer\.json.*inv models\.pull"):
        engines.load(settings(engine="faster-whisper", model_dir=model))


def test_model_without_vocabulary_is_refused_naming_both_file_names(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "model", vocabulary=False)
    with pytest.raises(EngineConfigError) as info:
        engines.load(settings(engine="faster-whisper", model_dir=model))
    assert "missing vocabulary.json or vocabulary.txt" in str(info.value)


def test_junk_model_bin_gives_a_clear_load_error(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "model")
    with pytest.raises(EngineLoadError) as info:
        engines.load(settings(engine="faster-whisper", model_dir=model))
    message = str(info.value)
    assert "could not load the faster-whisper model" in message
    assert str(model) in message
    assert "inv models.pull" in message


def test_auto_with_a_junk_model_fails_instead_of_falling_back(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "model")
    with pytest.raises(EngineLoadError):
        engines.load(settings(engine="auto", model_dir=model))


def test_cuda_without_a_gpu_fails_loudly(tmp_path: Path) -> None:
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("this machine has a CUDA device")
    model = fake_model_dir(tmp_path / "model")
    # The device check runs before loading: the junk model is never even opened.
    with pytest.raises(EngineConfigError) as info:
        engines.load(settings(engine="faster-whisper", model_dir=model, device="cuda"))
    message = str(info.value)
    assert "WHISPER_DEVICE=cuda" in message
    assert "Not falling back to the CPU" in message


def test_cuda_is_not_silently_served_by_pocketsphinx(tmp_path: Path) -> None:
    with pytest.raises(EngineConfigError, match="WHISPER_DEVICE=cuda needs the faster-whisper"):
        engines.load(settings(engine="auto", model_dir=tmp_path / "none", device="cuda"))


def test_compute_type_defaults_to_int8_on_cpu() -> None:
    assert settings(device="cpu").effective_compute_type == "int8"
    assert settings(device="cuda").effective_compute_type == "float16"
    assert settings(compute_type="float32").effective_compute_type == "float32"


def test_unsupported_compute_type_is_a_config_error(tmp_path: Path) -> None:
    import ctranslate2

    supported = ctranslate2.get_supported_compute_types("cpu")
    unsupported = [t for t in get_args(ComputeType) if t not in supported | {"auto", "default"}]
    if not unsupported:
        pytest.skip("this CPU supports every compute type")
    model = fake_model_dir(tmp_path / "model")
    with pytest.raises(EngineConfigError, match=f"WHISPER_COMPUTE_TYPE={unsupported[0]} is not"):
        engines.load(
            settings(engine="faster-whisper", model_dir=model, compute_type=unsupported[0])
        )
