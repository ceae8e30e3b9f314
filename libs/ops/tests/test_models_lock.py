"""models.lock: the committed file is valid and usable; bad files are refused with every reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.settings import ENVIRONMENTS
from ops.env import schema
from ops.environment import Environment
from ops.errors import OpsError
from ops.models import lock as model_lock

REPO_ROOT = Path(__file__).resolve().parents[3]
REAL_LOCK = REPO_ROOT / "models.lock"


@pytest.fixture(scope="module")
def real_lock() -> model_lock.Lock:
    return model_lock.load(REAL_LOCK)


def test_the_committed_lock_pins_whisper_and_ollama_for_every_environment(real_lock):
    assert set(real_lock.envs) == set(ENVIRONMENTS)
    for env in ENVIRONMENTS:
        pins = real_lock.for_env(env)
        assert pins.whisper is not None, env
        assert pins.ollama is not None, env


def test_the_committed_lock_has_real_looking_digests_and_sizes(real_lock):
    for pin in real_lock.whisper.values():
        if pin.source == "hub":
            assert re.fullmatch(r"[0-9a-f]{40}", pin.revision)
            assert pin.repository.startswith("Systran/faster-whisper-")
        else:
            assert all(re.fullmatch(r"[0-9a-f]{64}", w.sha256) for w in pin.wheels)
            # Every file is assembled from members of the pin's own wheels.
            assert all(f.parts for f in pin.files)
        for file in pin.files:
            assert re.fullmatch(r"[0-9a-f]{64}", file.sha256), file
            assert file.size > 0
        # A CTranslate2 whisper model.bin is tens of megabytes at least; config.json is small.
        sizes = {f.name: f.size for f in pin.files}
        assert sizes["model.bin"] > 50_000_000
        assert sizes["config.json"] < 10_000
        assert len({f.sha256 for f in pin.files}) == len(pin.files)
    for pin in real_lock.ollama.values():
        assert re.fullmatch(r"[0-9a-f]{64}", pin.digest)
        assert pin.size is None or pin.size > 0


def test_the_committed_lock_lists_every_file_faster_whisper_loads(real_lock):
    from whisper_service.engines.faster_whisper_engine import REQUIRED_FILES

    assert set(REQUIRED_FILES) <= set(model_lock.WHISPER_REQUIRED_FILES)
    for pin in real_lock.whisper.values():
        names = {f.name for f in pin.files}
        assert set(REQUIRED_FILES) <= names
        assert "vocabulary.txt" in names or "vocabulary.json" in names  # CTranslate2 needs one


def test_dev_runs_a_model_that_a_machine_reaching_only_a_package_index_can_pull(real_lock):
    assert real_lock.for_env("dev").whisper.source == "index"  # type: ignore[union-attr]
    for env in ("staging", "prod"):
        assert real_lock.for_env(env).whisper.source == "hub"  # type: ignore[union-attr]


def test_the_lock_agrees_with_the_default_ollama_model_of_each_env(real_lock):
    # A fresh `.env.<env>` must not contradict the lock, or `inv models.pull` would refuse.

    for env in ENVIRONMENTS:
        pin = real_lock.for_env(env).ollama
        assert pin is not None
        assert schema.defaults_for(Environment.parse(env))["OLLAMA_MODEL"] == pin.name


def test_hub_url_layout_is_the_one_huggingface_hub_uses(real_lock):
    pin = real_lock.whisper["faster-whisper-small"]
    model = next(f for f in pin.files if f.name == "model.bin")
    assert pin.url("https://mirror.example/", model) == (
        f"https://mirror.example/Systran/faster-whisper-small/resolve/{pin.revision}/model.bin"
    )


SHA = "ab" * 32
GOOD = f"""
version = 1
[envs]
dev = {{ whisper = "w", ollama = "llama3.2:3b" }}
[whisper.w]
repository = "acme/w"
revision = "0123456789abcdef0123456789abcdef01234567"
files = [
  {{ name = "model.bin", size = 10, sha256 = "{SHA}" }},
  {{ name = "config.json", size = 2, sha256 = "{SHA}" }},
  {{ name = "tokenizer.json", size = 3, sha256 = "{SHA}" }},
]
[ollama."llama3.2:3b"]
digest = "{SHA}"
"""


def test_a_minimal_lock_parses(tmp_path):
    lock = model_lock.parse(GOOD, tmp_path / "models.lock")
    pins = lock.for_env("dev")
    assert pins.whisper is not None and pins.whisper.size == 15
    assert pins.ollama is not None and pins.ollama.short_digest == "abababababab"


def test_an_env_without_pins_is_refused_with_the_fix(tmp_path):
    lock = model_lock.parse(GOOD, tmp_path / "models.lock")
    with pytest.raises(OpsError, match=r"pins no models for 'prod'") as excinfo:
        lock.for_env("prod")
    assert "[envs]" in excinfo.value.fix


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (GOOD.replace("ab" * 32, "ab" * 31, 1), r"whisper\.w\.files\[0\]: sha256 must be 64"),
        (GOOD.replace('revision = "0123', 'revision = "main"  # '), r"never a branch"),
        (GOOD.replace('"model.bin", size = 10', '"../model.bin", size = 10'), r"plain file name"),
        (GOOD.replace("size = 10", "size = 0"), r"positive number of bytes"),
        (GOOD.replace('{ name = "model.bin"', '{ name = "other.bin"'), r"also needs model\.bin"),
        (GOOD.replace('whisper = "w"', 'whisper = "nope"'), r"'nope' is not a \[whisper\] entry"),
        (GOOD.replace("dev = {", "qa = {"), r"envs\.qa: unknown environment"),
        (GOOD.replace("version = 1", "version = 2"), r"version: must be 1"),
        (GOOD.replace('[ollama."llama3.2:3b"]', '[ollama."llama3.2"]'), r"name:tag"),
        (GOOD.replace("[envs]", "[envs]\n[x]"), r"unknown key\(s\) x"),
        ("version = [", r"not valid TOML"),
    ],
)
def test_broken_locks_are_refused_saying_where(tmp_path, broken, expected):
    with pytest.raises(OpsError, match=expected):
        model_lock.parse(broken, tmp_path / "models.lock")


def test_every_problem_is_reported_at_once(tmp_path):
    broken = GOOD.replace("size = 10", "size = -1").replace("ab" * 32, "xyz")
    with pytest.raises(OpsError) as excinfo:
        model_lock.parse(broken, tmp_path / "models.lock")
    message = str(excinfo.value)
    assert "positive number of bytes" in message
    assert message.count("sha256 must be 64") == 3
    assert "digest must be 64" in message


def test_a_missing_lock_says_how_to_restore_it(tmp_path):
    with pytest.raises(OpsError, match="does not exist") as excinfo:
        model_lock.load(tmp_path / "models.lock")
    assert "git checkout" in excinfo.value.fix
