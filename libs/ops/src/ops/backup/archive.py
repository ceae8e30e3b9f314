"""The backup archive: one uncompressed tar holding a database dump, media files and a manifest.

Layout (in this order; the manifest comes last so that an archive cut short anywhere lacks it):

    database.dump           `pg_dump -Fc` of the database (already compressed)
    media/<file>            every recording the dumped rows reference, flat
    manifest.json           what the archive holds: env, time, versions, row counts, parts
    manifest.json.sha256    the manifest's own checksum: a flipped bit in it is caught too
    manifest.json.hmac      the deployment's MAC of the manifest (BACKUP_KEY; see seal.py)

With BACKUP_ENCRYPT=true the dump and media members hold their parts encrypted (seal.py; a
PAX header marks them), the manifest's sizes and SHA-256 are those of the plaintext.

Uncompressed on purpose: audio and `pg_dump -Fc` do not compress (gzip -1 makes random data
0.03% *bigger* at ~24 MB/s here, against ~190 MB/s written uncompressed; see
benchmarks/backup_restore.py), and a plain tar can be listed without reading it through.

An archive is written under a hidden temporary name, fsynced, then renamed: a crash leaves at
worst a `.<name>.partial` file, never a complete-looking archive. Reading checks every member's
size and SHA-256 against the manifest in one pass and can extract at the same time, so a
restore reads the archive once and refuses before it touches any live data.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ops import durable
from ops.backup import seal
from ops.backup.seal import BackupKey, SealError

FORMAT = "mi-backup/2"
UNSIGNED_FORMAT = "mi-backup/1"  # before archives were signed: readable, refused unless trusted
ENCRYPTED_PAX = "MI.encryption"
DUMP = "database.dump"
MEDIA_PREFIX = "media/"
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.json.sha256"
SUFFIX = ".tar"
SIDECAR_SUFFIX = ".verify.json"
PARTIAL_SUFFIX = ".partial"
CHUNK = 1024 * 1024


class ArchiveError(Exception):
    """The archive cannot be read as a backup (damaged, truncated, not ours)."""


@dataclass(frozen=True)
class Part:
    name: str
    size: int
    sha256: str


@dataclass
class Manifest:
    env: str
    created_at: str  # ISO 8601, UTC
    database: str
    alembic_revision: str | None
    row_counts: dict[str, int]
    parts: list[Part]
    app_version: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    postgres_version: str = ""
    runtime: str = ""
    # Referenced by a dumped row but absent from the media directory when the backup ran
    # (deleted outside the app): recorded so a restore's missing files are explained.
    media_missing: list[str] = field(default_factory=list)
    key_id: str = ""  # which BACKUP_KEY signed it (seal.BackupKey.key_id)
    encryption: str = ""  # seal.ENCRYPTION when the parts are encrypted
    format: str = FORMAT

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def media_parts(self) -> list[Part]:
        return [p for p in self.parts if p.name.startswith(MEDIA_PREFIX)]

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            data: dict[str, Any] = json.loads(raw)
            if data.get("format") not in {FORMAT, UNSIGNED_FORMAT}:
                raise ArchiveError(
                    f"manifest format {data.get('format')!r} is not {FORMAT!r}: "
                    "not a backup made by `inv backup` (or made by a newer version)"
                )
            data["parts"] = [Part(**p) for p in data["parts"]]
            data["row_counts"] = {str(k): int(v) for k, v in data["row_counts"].items()}
            manifest = cls(**data)
            manifest.created  # noqa: B018 - validates the timestamp
        except ArchiveError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise ArchiveError(f"the manifest is malformed: {exc}") from None
        return manifest


def utc_now() -> datetime:
    return datetime.now(UTC)


def archive_name(env: str, when: datetime) -> str:
    """`mi-<env>-<UTC time to the millisecond>.tar`: names sort in creation order."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3]
    return f"mi-{env}-{stamp}Z{SUFFIX}"


def is_archive_name(name: str) -> bool:
    return name.startswith("mi-") and name.endswith(SUFFIX) and not name.startswith(".")


def media_member(filename: str) -> str:
    return MEDIA_PREFIX + filename


def _safe_media_name(member: str) -> str | None:
    """The file name of a media member, or None when the name could escape its directory."""
    name = member.removeprefix(MEDIA_PREFIX)
    if not name or "/" in name or "\\" in name or name in {".", ".."} or "\0" in name:
        return None
    return name


# --- writing ----------------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """Hashes what tarfile copies into the archive, so every byte is read once."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


class ArchiveWriter:
    """Writes one archive atomically; use as a context manager (an error discards it)."""

    def __init__(self, final: Path, key: BackupKey, *, encrypt: bool = False) -> None:
        self.final = final
        self.key = key
        self.encrypt = encrypt
        self.partial = final.with_name(f".{final.name}{PARTIAL_SUFFIX}")
        self.parts: list[Part] = []
        # "x": never overwrite; a leftover partial of a crashed run was cleaned up before.
        self._file = self.partial.open("xb")
        self._tar = tarfile.TarFile(
            fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK
        )
        self._done = False

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self._done:
            self.abort()

    def add_file(self, member: str, path: Path) -> Part:
        stat = path.stat()
        with path.open("rb") as fh:
            return self.add_stream(member, fh, stat.st_size, mtime=stat.st_mtime)

    def add_stream(self, member: str, fh: IO[bytes], size: int, *, mtime: float = 0) -> Part:
        info = tarfile.TarInfo(member)
        info.size = size
        info.mtime = int(mtime)
        info.mode = 0o640
        reader = _HashingReader(fh)  # hashes the plaintext: what a restore gets back
        source: io.RawIOBase = reader
        if self.encrypt:
            info.size = seal.encrypted_size(size)
            info.pax_headers = {ENCRYPTED_PAX: seal.ENCRYPTION}
            source = seal.EncryptingReader(reader, size, self.key, member)
        # tarfile raises "unexpected end of data" when the source is shorter than `size`.
        self._tar.addfile(info, source)
        part = Part(member, reader.count, reader.digest.hexdigest())
        self.parts.append(part)
        return part

    def _add_bytes(self, member: str, data: bytes) -> None:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        info.mtime = int(utc_now().timestamp())
        info.mode = 0o640
        self._tar.addfile(info, io.BytesIO(data))

    def finish(self, manifest: Manifest) -> Path:
        """Add the manifest, flush everything to disk, then give the archive its name."""
        manifest.parts = list(self.parts)
        manifest.key_id = self.key.key_id
        manifest.encryption = seal.ENCRYPTION if self.encrypt else ""
        raw = manifest.to_bytes()
        self._add_bytes(MANIFEST, raw)
        self._add_bytes(MANIFEST_SUM, f"{hashlib.sha256(raw).hexdigest()}  {MANIFEST}\n".encode())
        self._add_bytes(seal.MAC_MEMBER, self.key.mac_line(raw))
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self.partial.chmod(0o600)
        self.partial.rename(self.final)
        durable.fsync_dir(self.final.parent)
        self._done = True
        return self.final

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._tar.close()
        with contextlib.suppress(Exception):
            self._file.close()
        self.partial.unlink(missing_ok=True)
        self._done = True


# --- reading ----------------------------------------------------------------------------------


def _parse_manifest(raw: bytes, checksum_line: bytes | None) -> Manifest:
    if checksum_line is None:
        raise ArchiveError(f"{MANIFEST_SUM} is missing: the archive is incomplete")
    expected = checksum_line.decode(errors="replace").split()[:1]
    if expected != [hashlib.sha256(raw).hexdigest()]:
        raise ArchiveError(f"{MANIFEST} does not match {MANIFEST_SUM}: the manifest is damaged")
    return Manifest.from_bytes(raw)


HEAD_MEMBERS = {MANIFEST, MANIFEST_SUM, seal.MAC_MEMBER}


@dataclass
class Head:
    """The manifest (checked against its checksum), its exact bytes and its MAC line."""

    manifest: Manifest
    raw: bytes
    mac: bytes | None

    def authenticate(self, key: BackupKey | None, *, trust: bool) -> None:
        """SealError unless this deployment signed it (or `trust`)."""
        seal.check_mac(self.raw, self.mac, key, trust=trust)


def read_head(path: Path) -> Head:
    """The manifest and its MAC alone (seeks over the data: fast)."""
    try:
        with tarfile.open(path, "r:") as tar:
            found: dict[str, bytes] = {}
            for member in tar:
                if member.name in HEAD_MEMBERS and member.isfile():
                    fh = tar.extractfile(member)
                    assert fh is not None
                    found[member.name] = fh.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"{path.name} is truncated or damaged: {exc}") from None
    if MANIFEST not in found:
        raise ArchiveError(f"{path.name} has no {MANIFEST}: it is incomplete or not a backup")
    manifest = _parse_manifest(found[MANIFEST], found.get(MANIFEST_SUM))
    return Head(manifest, found[MANIFEST], found.get(seal.MAC_MEMBER))


def read_manifest(path: Path) -> Manifest:
    """The manifest alone, checked against its checksum (not its MAC: `read_head`)."""
    return read_head(path).manifest


@dataclass
class Scan:
    """What reading an archive through found."""

    manifest: Manifest | None
    problems: list[str]
    dump: Path | None = None  # where the dump was extracted to, if asked
    media: list[str] = field(default_factory=list)  # media file names extracted

    @property
    def ok(self) -> bool:
        return self.manifest is not None and not self.problems


def scan(
    path: Path,
    *,
    key: BackupKey | None,
    trust: bool = False,
    dump_to: Path | None = None,
    media_to: Path | None = None,
) -> Scan:
    """Read every member once: the manifest's MAC (with `key`; `trust` skips it), sizes and
    SHA-256 against the manifest, nothing extra or missing; encrypted parts are decrypted.

    With `dump_to` / `media_to`, the dump and the media files are written there on the way;
    the caller must discard them unless the returned scan is `ok`.
    """
    seen: dict[str, Part] = {}
    problems: list[str] = []
    manifest_raw: bytes | None = None
    checksum_line: bytes | None = None
    mac_line: bytes | None = None
    encrypted: set[str] = set()
    extracted: list[str] = []
    names: set[str] = set()
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                name = member.name
                if not member.isfile():
                    problems.append(f"unexpected non-file member {name!r}")
                    continue
                if name in names:
                    problems.append(f"member {name!r} appears twice")
                    continue
                names.add(name)
                fh = tar.extractfile(member)
                assert fh is not None
                if name in HEAD_MEMBERS:
                    data = fh.read()
                    if name == MANIFEST:
                        manifest_raw = data
                    elif name == MANIFEST_SUM:
                        checksum_line = data
                    else:
                        mac_line = data
                    continue
                target: Path | None = None
                if name == DUMP:
                    target = dump_to
                elif name.startswith(MEDIA_PREFIX):
                    safe = _safe_media_name(name)
                    if safe is None:
                        problems.append(f"unsafe media member name {name!r}")
                        continue
                    if media_to is not None:
                        target = media_to / safe
                        extracted.append(safe)
                else:
                    problems.append(f"unexpected member {name!r}")
                    continue
                source: IO[bytes] = fh
                if member.pax_headers.get(ENCRYPTED_PAX):
                    encrypted.add(name)
                    try:
                        source = seal.decrypt_stream(fh, member.size, key, name)  # type: ignore[assignment]
                        seen[name] = _copy_hashing(source, target, member.mtime)
                    except SealError as exc:
                        problems.append(str(exc))
                        if target is not None:
                            target.unlink(missing_ok=True)
                    continue
                seen[name] = _copy_hashing(source, target, member.mtime)
    except (tarfile.TarError, OSError, EOFError) as exc:
        problems.append(f"the archive is truncated or damaged: {exc}")
    if manifest_raw is None:
        problems.append(f"{MANIFEST} is missing: the archive is incomplete")
        return Scan(None, problems)
    try:
        manifest = _parse_manifest(manifest_raw, checksum_line)
        seal.check_mac(manifest_raw, mac_line, key, trust=trust)
    except ArchiveError as exc:
        problems.append(str(exc))
        return Scan(None, problems)
    except SealError as exc:
        problems.insert(0, f"not made by this deployment: {exc}")
        return Scan(None, problems)
    plain = sorted(set(seen) - encrypted)
    if manifest.encryption and plain:
        problems.append(f"{plain[0]} is not encrypted, the manifest says every part is")
    problems += compare_parts(manifest.parts, seen)
    return Scan(manifest, problems, dump_to if DUMP in seen else None, extracted)


def compare_parts(expected: list[Part], seen: dict[str, Part]) -> list[str]:
    problems = []
    wanted = {p.name: p for p in expected}
    if DUMP not in wanted:
        problems.append(f"the manifest lists no {DUMP}")
    for name, part in wanted.items():
        got = seen.get(name)
        if got is None:
            problems.append(f"{name} is listed in the manifest but missing from the archive")
        elif got.size != part.size:
            problems.append(f"{name}: {got.size} bytes, the manifest says {part.size}")
        elif got.sha256 != part.sha256:
            problems.append(f"{name}: SHA-256 differs from the manifest (content damaged)")
    extra = sorted(set(seen) - set(wanted))
    if extra:
        problems.append(f"{len(extra)} member(s) not in the manifest, e.g. {extra[0]!r}")
    return problems


def _copy_hashing(fh: IO[bytes], target: Path | None, mtime: float) -> Part:
    digest = hashlib.sha256()
    size = 0
    out = target.open("xb") if target is not None else None
    try:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    if target is not None:
        os.utime(target, (mtime, mtime))
    return Part("", size, digest.hexdigest())


# --- verification records next to the archive -------------------------------------------------


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked_at: str
    drill: bool
    problems: list[str]
    archive_size: int
    archive_mtime_ns: int
    detail: str = ""


def sidecar_path(archive: Path) -> Path:
    return archive.with_name(archive.name + SIDECAR_SUFFIX)


def record_verification(
    archive: Path, *, ok: bool, drill: bool, problems: list[str], detail: str = ""
) -> Verification:
    """Write `<archive>.verify.json`; it goes stale when the archive changes afterwards."""
    stat = archive.stat()
    result = Verification(
        ok=ok,
        checked_at=utc_now().isoformat(timespec="seconds"),
        drill=drill,
        problems=problems,
        archive_size=stat.st_size,
        archive_mtime_ns=stat.st_mtime_ns,
        detail=detail,
    )
    path = sidecar_path(archive)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(result), indent=2) + "\n")
    tmp.rename(path)
    return result


def read_verification(archive: Path) -> Verification | None:
    try:
        data = json.loads(sidecar_path(archive).read_text())
        return Verification(**data)
    except (OSError, ValueError, TypeError):
        return None


def verification_state(archive: Path) -> str:
    """no | verified | drilled | FAILED | stale (the archive changed after its check)."""
    record = read_verification(archive)
    if record is None:
        return "no"
    stat = archive.stat()
    if (stat.st_size, stat.st_mtime_ns) != (record.archive_size, record.archive_mtime_ns):
        return "stale"
    if not record.ok:
        return "FAILED"
    return "drilled" if record.drill else "verified"
