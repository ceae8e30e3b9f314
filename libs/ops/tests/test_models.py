"""`models.pull` / `models.list` against a real HTTP server on loopback.

The server stands in for the two things that cannot run here, speaking their protocols: the
Hugging Face hub (`/{repo}/resolve/{revision}/{file}`, LFS files redirected to a CDN path,
Range requests answered with 206) and an Ollama server (`/api/tags`, `/api/pull` streaming
NDJSON progress). It records every request so the tests can see what went over the wire.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ops import models
from ops.environment import Environment
from ops.errors import OpsError
from ops.models import files as model_files
from ops.models import lock as model_lock
from ops.models.files import Limits
from ops.models.ollama import OllamaTimeouts

REPO = "acme/fake-whisper"
REVISION = "0123456789abcdef0123456789abcdef01234567"
OLLAMA_NAME = "llama3.2:3b"
OLLAMA_DIGEST = "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72"
FAST = Limits(connect=2, read=2, total=60, attempts=3, backoff=0.01)


def model_bytes() -> dict[str, bytes]:
    """A fake model: a multi-chunk model.bin and the small files, deterministic content."""
    big = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)
    return {
        "config.json": b'{"alignment_heads": [], "lang_ids": []}\n',
        "model.bin": big,
        "tokenizer.json": b'{"model": {"vocab": {}}}\n' * 40,
        "vocabulary.txt": b"\n".join(b"token%d" % i for i in range(500)),
    }


@dataclass
class Seen:
    method: str
    path: str
    range: str | None
    status: int
    sent: int = 0


@dataclass
class FakeUpstream:
    """What the fake hub and Ollama serve, and what they saw."""

    files: dict[str, bytes]
    url: str = ""
    cut_after: dict[str, int] = field(default_factory=dict)  # file -> bytes, then drop (once)
    stall: set[str] = field(default_factory=set)  # files whose body never comes
    ignore_range: bool = False
    served_override: dict[str, bytes] = field(default_factory=dict)  # tampered bytes
    seen: list[Seen] = field(default_factory=list)
    ollama_installed: dict[str, str] = field(default_factory=dict)
    ollama_pull_digest: str = OLLAMA_DIGEST
    ollama_pull_error: str | None = None
    ollama_pull_status: int = 200
    ollama_pulls: list[dict[str, object]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def hub_requests(self, name: str | None = None) -> list[Seen]:
        return [
            s
            for s in self.seen
            if not s.path.startswith("/api/")
            and s.status in (200, 206, 416)
            and (name is None or s.path.endswith(f"/{name}"))
        ]

    def bytes_sent(self, name: str) -> int:
        return sum(s.sent for s in self.hub_requests(name))


def _handler(up: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/api/tags":
                models_ = [
                    {"name": n, "model": n, "digest": d, "size": 1}
                    for n, d in up.ollama_installed.items()
                ]
                up.seen.append(Seen("GET", self.path, None, 200))
                self._json(200, {"models": models_})
                return
            match = re.fullmatch(rf"/{REPO}/resolve/{REVISION}/([\w.]+)", self.path)
            cdn = re.fullmatch(r"/cdn/([\w.]+)", self.path)
            name = (match or cdn).group(1) if (match or cdn) else None
            if name not in up.files:
                up.seen.append(Seen("GET", self.path, None, 404))
                self._json(404, {"error": "Entry not found"})
                return
            if match and name == "model.bin":
                # The hub answers LFS files with a redirect to its CDN; Range must survive it.
                up.seen.append(Seen("GET", self.path, self.headers.get("Range"), 302))
                self.send_response(302)
                self.send_header("Location", f"/cdn/{name}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send_file(name)

        def _send_file(self, name: str) -> None:
            data = up.served_override.get(name, up.files[name])
            asked = self.headers.get("Range")
            start = 0
            status = 200
            if asked and not up.ignore_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1))  # type: ignore[union-attr]
                if start >= len(data):
                    up.seen.append(Seen("GET", self.path, asked, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            seen = Seen("GET", self.path, asked, status)
            up.seen.append(seen)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if name in up.stall:
                up.stop.wait(10)  # headers sent, then nothing: a stalled transfer
                return
            cut = up.cut_after.pop(name, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                seen.sent = cut
                self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-file
                self.close_connection = True
                return
            self.wfile.write(body)
            seen.sent = len(body)

        def do_POST(self) -> None:
            if self.path != "/api/pull":
                self._json(404, {"error": "not found"})
                return
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            up.ollama_pulls.append(request)
            up.seen.append(Seen("POST", self.path, None, up.ollama_pull_status))
            if up.ollama_pull_status != 200:
                self._json(up.ollama_pull_status, {"error": "model name is invalid"})
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()  # HTTP/1.0: the body ends when the connection closes

            def line(message: dict[str, object]) -> None:
                self.wfile.write(json.dumps(message).encode() + b"\n")
                self.wfile.flush()

            line({"status": "pulling manifest"})
            if up.ollama_pull_error:
                line({"error": up.ollama_pull_error})
                return
            layer = "sha256:" + "cd" * 32
            for done in (0, 500, 1000):
                line({"status": f"pulling {layer[7:19]}", "digest": layer, "total": 1000,
                      "completed": done})  # fmt: skip
            line({"status": "verifying sha256 digest"})
            line({"status": "writing manifest"})
            up.ollama_installed[str(request["model"])] = up.ollama_pull_digest
            line({"status": "success"})

    return Handler


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream(files=model_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(up))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    up.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield up
    finally:
        up.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def lock_text(files: dict[str, bytes], *, digest: str = OLLAMA_DIGEST) -> str:
    entries = "\n".join(
        f'  {{ name = "{name}", size = {len(data)}, '
        f'sha256 = "{hashlib.sha256(data).hexdigest()}" }},'
        for name, data in files.items()
    )
    return f"""version = 1
[envs]
dev = {{ whisper = "fake", ollama = "{OLLAMA_NAME}" }}
[whisper.fake]
repository = "{REPO}"
revision = "{REVISION}"
files = [
{entries}
]
[ollama."{OLLAMA_NAME}"]
digest = "{digest}"
"""


@pytest.fixture
def lock(tmp_path: Path) -> model_lock.Lock:
    return model_lock.parse(lock_text(model_bytes()), tmp_path / "models.lock")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "models" / "whisper"


@pytest.fixture
def values(upstream: FakeUpstream, target: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("HF_ENDPOINT", upstream.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return {
        "WHISPER_MODEL_DIR": str(target),
        "WHISPER_ENGINE": "auto",
        "LLM_ENGINE": "auto",
        "OLLAMA_URL": upstream.url,
        "OLLAMA_MODEL": OLLAMA_NAME,
    }


def pull(lock, values, **kwargs) -> dict[str, models.Row]:
    kwargs.setdefault("limits", FAST)
    rows = models.pull(Environment.parse("dev"), lock=lock, values=values, **kwargs)
    return {row.kind: row for row in rows}


def status(lock, values, **kwargs) -> dict[str, models.Row]:
    rows = models.status(Environment.parse("dev"), lock=lock, values=values, **kwargs)
    return {row.kind: row for row in rows}


def leftovers(parent: Path) -> list[str]:
    """Partial downloads anywhere near the target."""
    return sorted(str(p.relative_to(parent)) for p in parent.rglob("*.part"))


# --- whisper: fetching ----------------------------------------------------------------------


def test_pull_places_the_verified_model_and_a_second_pull_downloads_nothing(
    upstream, lock, values, target
):
    rows = pull(lock, values)
    assert rows["whisper"].state == "pulled", rows["whisper"]
    assert rows["whisper"].status == "ok"
    for name, data in upstream.files.items():
        assert (target / name).read_bytes() == data
    assert not any(p.name.startswith(".whisper.download") for p in target.parent.iterdir())
    assert leftovers(target.parent) == []
    assert {s.path.rsplit("/", 1)[1] for s in upstream.hub_requests()} == set(upstream.files)

    before = len(upstream.seen)
    again = pull(lock, values)
    assert again["whisper"].state == "verified"
    assert [s for s in upstream.seen[before:] if not s.path.startswith("/api/")] == []


def test_a_cut_connection_is_resumed_with_a_range_request(upstream, lock, values, target):
    size = len(upstream.files["model.bin"])
    upstream.cut_after["model.bin"] = size * 2 // 5
    rows = pull(lock, values)
    assert rows["whisper"].state == "pulled", rows["whisper"]
    assert "resumed 1 time" in rows["whisper"].detail
    first, second = upstream.hub_requests("model.bin")
    assert first.range is None and first.sent == size * 2 // 5
    assert second.range == f"bytes={size * 2 // 5}-" and second.status == 206
    assert upstream.bytes_sent("model.bin") == size  # not twice the file
    assert (target / "model.bin").read_bytes() == upstream.files["model.bin"]


def test_an_interrupted_pull_keeps_its_part_and_the_next_pull_continues_from_it(
    upstream, lock, values, target
):
    size = len(upstream.files["model.bin"])
    upstream.cut_after["model.bin"] = size // 3
    once = Limits(connect=2, read=2, total=60, attempts=1, backoff=0.01)
    first = pull(lock, values, limits=once)["whisper"]
    assert (first.state, first.status) == ("interrupted", "fail")
    assert "run the pull again to resume" in first.detail
    assert not target.exists()  # nothing half-made where the service looks
    parts = leftovers(target.parent)
    assert len(parts) == 1 and parts[0].endswith("model.bin.part")
    assert (target.parent / parts[0]).stat().st_size == size // 3

    listed = status(lock, values)["whisper"]
    assert listed.state == "missing"
    assert "of an interrupted pull wait to be resumed" in listed.detail

    second = pull(lock, values, limits=once)["whisper"]
    assert second.state == "pulled", second
    resumed = upstream.hub_requests("model.bin")[-1]
    assert resumed.range == f"bytes={size // 3}-"
    assert upstream.bytes_sent("model.bin") == size
    assert (target / "model.bin").read_bytes() == upstream.files["model.bin"]
    assert leftovers(target.parent) == []


def test_a_server_without_range_support_restarts_the_file_and_still_succeeds(
    upstream, lock, values, target
):
    upstream.cut_after["model.bin"] = 1000
    upstream.ignore_range = True
    rows = pull(lock, values)
    assert rows["whisper"].state == "pulled", rows["whisper"]
    assert (target / "model.bin").read_bytes() == upstream.files["model.bin"]


@pytest.mark.parametrize("tamper", ["same size", "longer"])
def test_bytes_that_do_not_match_the_lock_are_refused_and_nothing_is_placed(
    upstream, lock, values, target, tamper
):
    real = upstream.files["model.bin"]
    upstream.served_override["model.bin"] = (
        real[:-1] + bytes([real[-1] ^ 1]) if tamper == "same size" else real + b"extra"
    )
    rows = pull(lock, values)
    row = rows["whisper"]
    assert (row.state, row.status) == ("refused", "fail"), row
    assert "does not match models.lock" in row.detail or "not the locked file" in row.detail
    assert not target.exists()
    assert leftovers(target.parent) == []
    if tamper == "longer":  # refused from the Content-Length, before reading the body
        assert upstream.bytes_sent("model.bin") <= len(real) + 5
    with pytest.raises(OpsError, match="models for dev not ready: whisper fake"):
        models.raise_for_failures(list(rows.values()), "dev")


def test_the_target_never_holds_a_partial_model(upstream, lock, values, target):
    observed: list[bool] = []
    whisper_bars: set[int] = set()
    started: list[str] = []

    class Watch(model_files.NoBars):
        def start(self, label: str, total: int | None, completed: int = 0) -> int:
            bar = len(started)
            started.append(label)
            if label in upstream.files:  # the model's files, not the Ollama layers after it
                whisper_bars.add(bar)
            return bar

        def update(self, bar: int, completed: int, total: int | None = None) -> None:
            if bar in whisper_bars:
                observed.append(target.exists())

    upstream.cut_after["model.bin"] = 4096
    rows = pull(lock, values, bars=Watch())
    assert rows["whisper"].state == "pulled"
    assert observed and not any(observed)  # absent during every byte of the download
    assert sorted(p.name for p in target.iterdir()) == sorted([*upstream.files, ".verified.json"])


def test_a_stalled_transfer_fails_within_its_bounds(upstream, lock, values, target):
    upstream.stall.add("model.bin")
    limits = Limits(connect=1, read=0.3, total=30, attempts=2, backoff=0.01)
    started = time.monotonic()
    row = pull(lock, values, limits=limits)["whisper"]
    assert time.monotonic() - started < 5
    assert (row.state, row.status) == ("interrupted", "fail")
    assert "no data for too long" in row.detail
    assert not target.exists()


def test_the_total_time_limit_is_enforced(upstream, lock, values, target):
    upstream.stall.add("model.bin")
    limits = Limits(connect=1, read=0.3, total=0.5, attempts=10, backoff=0.2)
    started = time.monotonic()
    row = pull(lock, values, limits=limits)["whisper"]
    assert time.monotonic() - started < 3
    assert row.status == "fail"


def test_no_network_fails_fast_and_says_how_to_bring_the_model(lock, values, target, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    started = time.monotonic()
    row = pull(lock, values)["whisper"]
    assert time.monotonic() - started < 5
    assert (row.state, row.status) == ("missing", "fail")
    assert "cannot connect" in row.detail
    assert "Air-gapped" in row.fix and "model.bin" in row.fix
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == [".whisper.pull.lock"]  # no staging


def test_offline_downloads_nothing_and_lists_exactly_what_is_missing(
    upstream, lock, values, target
):
    rows = pull(lock, values, offline=True)
    assert upstream.hub_requests() == []
    assert upstream.ollama_pulls == []
    whisper = rows["whisper"]
    assert (whisper.state, whisper.status) == ("missing", "fail")
    for name, data in upstream.files.items():
        assert re.search(
            rf"{re.escape(name)}\s+{len(data)} bytes\s+sha256 {hashlib.sha256(data).hexdigest()}",
            whisper.fix,
        )
    assert f"{upstream.url}/{REPO}/resolve/{REVISION}/<name>" in whisper.fix
    assert f"so that {target} holds" in whisper.fix
    ollama = rows["ollama"]
    assert ollama.state == "missing"
    assert f"`ollama pull {OLLAMA_NAME}`" in ollama.fix
    assert "manifests/registry.ollama.ai/library/llama3.2/3b" in ollama.fix


def test_hf_hub_offline_means_offline(upstream, lock, values, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    row = pull(lock, values)["whisper"]
    assert row.state == "missing" and row.detail.startswith("offline:")
    assert upstream.hub_requests() == []


def test_an_air_gapped_copy_is_verified_offline(upstream, lock, values, target):
    target.mkdir(parents=True)
    for name, data in upstream.files.items():
        (target / name).write_bytes(data)
    row = pull(lock, values, offline=True)["whisper"]
    assert (row.state, row.status) == ("verified", "ok")
    assert upstream.hub_requests() == []


def test_another_model_in_the_target_is_kept_unless_replace_is_given(
    upstream, lock, values, target
):
    target.mkdir(parents=True)
    (target / "model.bin").write_bytes(b"some other model")
    (target / "config.json").write_bytes(upstream.files["config.json"])
    refused = pull(lock, values)["whisper"]
    assert (refused.state, refused.status) == ("mismatch", "fail")
    assert "--replace" in refused.fix
    assert (target / "model.bin").read_bytes() == b"some other model"
    assert upstream.hub_requests() == []

    replaced = pull(lock, values, replace=True)["whisper"]
    assert replaced.state == "pulled", replaced
    assert "kept config.json" in replaced.detail
    assert upstream.hub_requests("config.json") == []  # the matching file was not fetched again
    assert (target / "model.bin").read_bytes() == upstream.files["model.bin"]
    assert not list(target.parent.glob(".whisper.replaced-*"))


def test_an_empty_target_directory_is_filled(upstream, lock, values, target):
    target.mkdir(parents=True)  # what compose's bind mount leaves behind
    row = pull(lock, values)["whisper"]
    assert row.state == "pulled"
    assert (target / "model.bin").is_file()


def test_a_concurrent_pull_of_the_same_directory_is_refused(upstream, lock, values, target):
    import fcntl

    target.parent.mkdir(parents=True)
    with (target.parent / ".whisper.pull.lock").open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        row = pull(lock, values)["whisper"]
    assert (row.state, row.status) == ("busy", "fail")
    assert upstream.hub_requests() == []


def test_a_missing_file_on_the_endpoint_is_a_clear_failure(upstream, lock, values, target):
    del upstream.files["vocabulary.txt"]
    row = pull(lock, values)["whisper"]
    assert row.status == "fail"
    assert "404" in row.detail and "vocabulary.txt" in row.detail
    assert not target.exists()


def test_pocketsphinx_needs_no_whisper_model(upstream, lock, values):
    values["WHISPER_ENGINE"] = "pocketsphinx"
    row = pull(lock, values)["whisper"]
    assert (row.state, row.status) == ("skipped", "ok")
    assert upstream.hub_requests() == []


# --- whisper: listing -----------------------------------------------------------------------


def test_list_is_offline_and_trusts_its_stamp_until_a_file_changes(
    upstream, lock, values, target, monkeypatch
):
    assert status(lock, values)["whisper"].state == "missing"
    pull(lock, values)
    requests = len(upstream.hub_requests())

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"models.list hashed {path}")

    with monkeypatch.context() as patched:
        patched.setattr(model_files, "sha256_file", no_hashing)
        row = status(lock, values)["whisper"]
    assert (row.state, row.status) == ("verified", "ok")
    assert len(upstream.hub_requests()) == requests

    model = target / "model.bin"
    data = bytearray(model.read_bytes())
    data[100] ^= 0xFF  # same size, other bytes, newer mtime
    model.write_bytes(bytes(data))
    os.utime(model, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = status(lock, values)["whisper"]
    assert changed.state == "unverified" and "--verify" in changed.fix
    checked = status(lock, values, verify=True)["whisper"]
    assert (checked.state, checked.status) == ("mismatch", "fail")


def test_list_verify_records_a_good_copy(upstream, lock, values, target):
    target.mkdir(parents=True)
    for name, data in upstream.files.items():
        (target / name).write_bytes(data)
    assert status(lock, values)["whisper"].state == "unverified"
    assert status(lock, values, verify=True)["whisper"].state == "verified"
    assert status(lock, values)["whisper"].state == "verified"  # remembered


def test_list_reports_an_incomplete_copy(upstream, lock, values, target):
    target.mkdir(parents=True)
    (target / "model.bin").write_bytes(upstream.files["model.bin"])
    row = status(lock, values)["whisper"]
    assert (row.state, row.status) == ("incomplete", "fail")
    assert "config.json" in row.detail and "tokenizer.json" in row.detail


# --- ollama ---------------------------------------------------------------------------------


def test_ollama_model_is_pulled_through_the_server_and_its_digest_checked(upstream, lock, values):
    seen_bars: list[tuple[str, int | None]] = []

    class Record(model_files.NoBars):
        def start(self, label: str, total: int | None, completed: int = 0) -> int:
            seen_bars.append((label, total))
            return len(seen_bars)

    row = pull(lock, values, bars=Record())["ollama"]
    assert (row.state, row.status) == ("pulled", "ok"), row
    assert upstream.ollama_pulls == [{"model": OLLAMA_NAME, "stream": True}]
    assert any(total == 1000 for _, total in seen_bars)  # a bar per layer, from the stream

    again = pull(lock, values)["ollama"]
    assert again.state == "verified"
    assert len(upstream.ollama_pulls) == 1  # idempotent: no second pull


def test_an_ollama_error_line_fails_the_pull_with_its_text(upstream, lock, values):
    upstream.ollama_pull_error = "pull model manifest: file does not exist"
    row = pull(lock, values)["ollama"]
    assert (row.state, row.status) == ("failed", "fail")
    assert "pull model manifest: file does not exist" in row.detail


def test_an_ollama_error_status_fails_the_pull_with_its_text(upstream, lock, values):
    upstream.ollama_pull_status = 400
    row = pull(lock, values)["ollama"]
    assert row.status == "fail" and "model name is invalid" in row.detail


def test_an_ollama_digest_other_than_the_lock_is_a_failure(upstream, lock, values):
    upstream.ollama_pull_digest = "ee" * 32
    row = pull(lock, values)["ollama"]
    assert (row.state, row.status) == ("mismatch", "fail")
    assert "eeeeeeeeeeee" in row.detail and OLLAMA_DIGEST[:12] in row.detail
    assert "update the digest in models.lock" in row.fix


def test_ollama_is_optional_with_llm_engine_auto_and_required_with_ollama(lock, values):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        values["OLLAMA_URL"] = f"http://127.0.0.1:{probe.getsockname()[1]}"
    quick = OllamaTimeouts(connect=0.5, read=1, pull_read=1, total=5)
    rows = models.pull(
        Environment.parse("dev"), lock=lock, values=values, limits=FAST, ollama_timeouts=quick
    )
    auto = {r.kind: r for r in rows}["ollama"]
    assert (auto.state, auto.status) == ("unknown", "warn")
    assert "extractive" in auto.detail
    values["LLM_ENGINE"] = "ollama"
    required = status(lock, values)["ollama"]
    assert (required.state, required.status) == ("unknown", "fail")
    assert "ollama serve" in required.fix


def test_extractive_needs_no_ollama_model(upstream, lock, values):
    values["LLM_ENGINE"] = "extractive"
    row = pull(lock, values)["ollama"]
    assert (row.state, row.status) == ("not needed", "ok")
    assert upstream.ollama_pulls == [] and not any(s.path == "/api/tags" for s in upstream.seen)


def test_an_ollama_model_setting_that_contradicts_the_lock_is_refused(upstream, lock, values):
    values["OLLAMA_MODEL"] = "qwen2.5:7b"
    row = pull(lock, values)["ollama"]
    assert (row.state, row.status) == ("misconfigured", "fail")
    assert "OLLAMA_MODEL=qwen2.5:7b" in row.detail and f"OLLAMA_MODEL={OLLAMA_NAME}" in row.fix
    assert upstream.ollama_pulls == []


# --- through `inv`, like a user ---------------------------------------------------------------


@pytest.fixture
def scratch_repo(tmp_path: Path, upstream: FakeUpstream) -> Path:
    """A repository root with the real tasks.py, a test lock and a .env.dev using the fakes."""
    real = Path(__file__).resolve().parents[3]
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("tasks.py", "pyproject.toml"):
        (root / name).write_text((real / name).read_text())
    (root / "models.lock").write_text(lock_text(upstream.files))
    (root / ".env.dev").write_text(
        f"WHISPER_MODEL_DIR=.models/whisper\nOLLAMA_URL={upstream.url}\nLLM_ENGINE=auto\n"
    )
    return root


def run_inv(root: Path, upstream: FakeUpstream, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_ENDPOINT": upstream.url, "COLUMNS": "200"}
    env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_inv_models_pull_offline_then_online_then_list(scratch_repo, upstream):
    offline = run_inv(scratch_repo, upstream, "models.pull", "--env", "dev", "--offline")
    assert offline.returncode == 1, offline.stdout + offline.stderr
    assert "models for dev not ready: whisper fake (missing)" in offline.stderr
    assert "model.bin" in offline.stdout and "--offline` verifies it" in offline.stdout
    assert "Traceback" not in offline.stderr
    assert upstream.hub_requests() == []

    online = run_inv(scratch_repo, upstream, "models.pull", "--env", "dev")
    assert online.returncode == 0, online.stdout + online.stderr
    assert (scratch_repo / ".models" / "whisper" / "model.bin").is_file()

    listed = run_inv(scratch_repo, upstream, "models.list", "--env", "dev", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["kind"]: row for row in json.loads(listed.stdout)}
    assert rows["whisper"]["state"] == "verified"
    assert rows["ollama"]["state"] == "verified"
    assert rows["whisper"]["where"] == str((scratch_repo / ".models" / "whisper").resolve())


def test_inv_models_list_with_a_broken_lock_fails_cleanly(scratch_repo, upstream):
    (scratch_repo / "models.lock").write_text("version = 1\n[envs]\n")
    result = run_inv(scratch_repo, upstream, "models.list", "--env", "dev")
    assert result.returncode == 1
    assert "no environment pins a model" in result.stderr
    assert "Traceback" not in result.stderr


def test_inv_models_list_refuses_an_unknown_env(scratch_repo, upstream):
    result = run_inv(scratch_repo, upstream, "models.list", "--env", "qa")
    assert result.returncode == 2
    assert "unknown environment 'qa'" in result.stderr
