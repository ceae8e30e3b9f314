"""`models.lock`: which model each environment runs, pinned to exact bytes.

The file is TOML (see its header). Parsing is strict and reports every problem at once with
where it is, because a lock that is silently half-read would defeat its purpose.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ops.errors import OpsError

LOCK_NAME = "models.lock"
SUPPORTED_VERSION = 1

_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
# A plain file name: the lock must never be able to write outside the model directory.
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Ollama names: [namespace/]model:tag; the tag is required, a lock pins one exact tag.
_OLLAMA_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*:[A-Za-z0-9_][\w.-]*")

PinT = TypeVar("PinT")

# What faster-whisper needs to load a CTranslate2 model without reaching for the hub
# (whisper_service.engines.faster_whisper_engine.REQUIRED_FILES; a test keeps them in step).
WHISPER_REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")


@dataclass(frozen=True)
class LockedFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class WhisperPin:
    """A CTranslate2 whisper model directory at one commit of a hub repository."""

    key: str
    repository: str
    revision: str
    files: tuple[LockedFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def url(self, endpoint: str, file: LockedFile) -> str:
        # huggingface_hub's layout, which mirrors (HF_ENDPOINT) serve too.
        return f"{endpoint.rstrip('/')}/{self.repository}/resolve/{self.revision}/{file.name}"


@dataclass(frozen=True)
class OllamaPin:
    """An Ollama model tag and the manifest digest it must resolve to."""

    name: str
    digest: str
    size: int | None = None

    @property
    def short_digest(self) -> str:
        return self.digest[:12]  # what `ollama list` shows as ID


@dataclass(frozen=True)
class EnvPins:
    env: str
    whisper: WhisperPin | None
    ollama: OllamaPin | None


@dataclass(frozen=True)
class Lock:
    path: Path
    whisper: dict[str, WhisperPin]
    ollama: dict[str, OllamaPin]
    envs: dict[str, EnvPins]

    def for_env(self, env: str) -> EnvPins:
        try:
            return self.envs[env]
        except KeyError:
            raise OpsError(
                f"{self.path.name} pins no models for {env!r} (it has: {', '.join(self.envs)})",
                f"add `{env} = {{ whisper = ..., ollama = ... }}` under [envs] in {self.path}",
            ) from None


def default_path() -> Path:
    from ops import project

    return project.root() / LOCK_NAME


def load(path: Path | None = None) -> Lock:
    """Read and validate a lock file; OpsError lists every problem found."""
    path = path or default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OpsError(
            f"{path} does not exist",
            f"restore it from git (`git checkout -- {path.name}`); it pins the models",
        ) from None
    return parse(text, path)


def parse(text: str, path: Path) -> Lock:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OpsError(f"{path.name} is not valid TOML: {exc}", f"fix {path}") from None
    problems: list[str] = []
    lock = _Reader(problems).lock(data, path)
    if problems:
        listing = "\n  ".join(problems)
        raise OpsError(f"{path.name} has {len(problems)} problem(s):\n  {listing}", f"fix {path}")
    assert lock is not None  # no problems means every part was read
    return lock


class _Reader:
    """Walks the parsed TOML, collecting problems instead of stopping at the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def table(self, data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.fail(where, "must be a table")
            return {}
        return value

    def lock(self, data: dict[str, Any], path: Path) -> Lock | None:
        from common.settings import ENVIRONMENTS

        if data.get("version") != SUPPORTED_VERSION:
            self.fail("version", f"must be {SUPPORTED_VERSION} (got {data.get('version')!r})")
        unknown = sorted(set(data) - {"version", "envs", "whisper", "ollama"})
        if unknown:
            self.fail("top level", f"unknown key(s) {', '.join(unknown)}")
        whisper = {
            key: pin
            for key, spec in self.table(data, "whisper", "[whisper]").items()
            if (pin := self.whisper(key, spec)) is not None
        }
        ollama = {
            key: opin
            for key, spec in self.table(data, "ollama", "[ollama]").items()
            if (opin := self.ollama(key, spec)) is not None
        }
        envs: dict[str, EnvPins] = {}
        for env, spec in self.table(data, "envs", "[envs]").items():
            where = f"envs.{env}"
            if env not in ENVIRONMENTS:
                self.fail(where, f"unknown environment (use {', '.join(ENVIRONMENTS)})")
                continue
            if not isinstance(spec, dict):
                self.fail(where, "must be a table like { whisper = ..., ollama = ... }")
                continue
            extra = sorted(set(spec) - {"whisper", "ollama"})
            if extra:
                self.fail(where, f"unknown key(s) {', '.join(extra)}")
            envs[env] = EnvPins(
                env,
                self.ref(where, "whisper", spec.get("whisper"), whisper),
                self.ref(where, "ollama", spec.get("ollama"), ollama),
            )
        if not envs:
            self.fail("[envs]", "no environment pins a model")
        return None if self.problems else Lock(path, whisper, ollama, envs)

    def ref(self, where: str, kind: str, name: object, pins: dict[str, PinT]) -> PinT | None:
        if name is None:
            return None  # this environment does not use such a model
        if not isinstance(name, str) or name not in pins:
            self.fail(f"{where}.{kind}", f"{name!r} is not a [{kind}] entry of this file")
            return None
        return pins[name]

    def whisper(self, key: str, spec: object) -> WhisperPin | None:
        where = f"whisper.{key}"
        if not isinstance(spec, dict):
            self.fail(where, "must be a table")
            return None
        before = len(self.problems)
        repository, revision = spec.get("repository"), spec.get("revision")
        if not isinstance(repository, str) or not _REPOSITORY.fullmatch(repository):
            self.fail(where, f"repository must look like owner/name (got {repository!r})")
        if not isinstance(revision, str) or not _COMMIT.fullmatch(revision):
            self.fail(where, f"revision must be a 40-hex commit, never a branch (got {revision!r})")
        extra = sorted(set(spec) - {"repository", "revision", "files", "license"})
        if extra:
            self.fail(where, f"unknown key(s) {', '.join(extra)}")
        raw_files = spec.get("files")
        if not isinstance(raw_files, list) or not raw_files:
            self.fail(where, "files must be a non-empty list of { name, size, sha256 }")
            raw_files = []
        files = [
            f for i, raw in enumerate(raw_files) if (f := self.file(f"{where}.files[{i}]", raw))
        ]
        names = [f.name for f in files]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            self.fail(where, f"file(s) listed twice: {', '.join(duplicates)}")
        missing = [n for n in WHISPER_REQUIRED_FILES if n not in names]
        if missing:
            self.fail(where, f"faster-whisper also needs {', '.join(missing)}")
        if len(self.problems) > before:
            return None
        assert isinstance(repository, str) and isinstance(revision, str)
        return WhisperPin(key, repository, revision, tuple(files))

    def file(self, where: str, raw: object) -> LockedFile | None:
        if not isinstance(raw, dict):
            self.fail(where, "must be { name = ..., size = ..., sha256 = ... }")
            return None
        name, size, sha256 = raw.get("name"), raw.get("size"), raw.get("sha256")
        ok = True
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
            self.fail(where, f"name must be a plain file name (got {name!r})")
            ok = False
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            self.fail(where, f"size must be a positive number of bytes (got {size!r})")
            ok = False
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            self.fail(where, f"sha256 must be 64 lower-case hex digits (got {sha256!r})")
            ok = False
        if set(raw) - {"name", "size", "sha256"}:
            self.fail(
                where, f"unknown key(s) {', '.join(sorted(set(raw) - {'name', 'size', 'sha256'}))}"
            )
            ok = False
        if not ok:
            return None
        assert isinstance(name, str) and isinstance(size, int) and isinstance(sha256, str)
        return LockedFile(name, size, sha256)

    def ollama(self, key: str, spec: object) -> OllamaPin | None:
        where = f"ollama.{key}"
        if not _OLLAMA_NAME.fullmatch(key):
            self.fail(where, "the key must be an Ollama name:tag such as llama3.2:3b")
            return None
        if not isinstance(spec, dict):
            self.fail(where, "must be a table")
            return None
        digest, size = spec.get("digest"), spec.get("size")
        ok = True
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            self.fail(where, f"digest must be 64 lower-case hex digits (got {digest!r})")
            ok = False
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            self.fail(where, f"size must be a positive number of bytes (got {size!r})")
            ok = False
        extra = sorted(set(spec) - {"digest", "size"})
        if extra:
            self.fail(where, f"unknown key(s) {', '.join(extra)}")
            ok = False
        if not ok:
            return None
        assert isinstance(digest, str)
        return OllamaPin(key, digest, size if isinstance(size, int) else None)
