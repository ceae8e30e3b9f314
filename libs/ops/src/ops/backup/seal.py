"""Archives this deployment made, and only those: a MAC over the manifest, and optionally every
part encrypted at rest. Both keys are derived (HKDF-SHA256) from the one BACKUP_KEY of the
env schema, so signing and encryption can never be configured apart.

Authentication: `manifest.json.hmac` holds HMAC-SHA256 over the manifest's exact bytes. The
manifest lists every part's size and SHA-256, and reading an archive checks every part against
it, so the MAC covers every byte of the dump and the media. The line also names the key (a
key id: an HMAC of a constant, which reveals nothing of the key) so that "made by another
deployment" and "altered after it was made" get different messages.

Encryption (BACKUP_ENCRYPT=true): each part is AES-256-GCM in 1 MiB chunks, streamed both ways
(an archive of any size never sits in memory). A part starts with a magic and a random 8-byte
nonce prefix; chunk i uses nonce prefix + i, and its associated data binds the part's name, i
and whether it is the last chunk: chunks cannot be reordered, moved to another part, or cut
off at the end without the tag check failing. The manifest stays readable (`inv backup.list`
shows age and revision without the key); it holds names, sizes and counts, no content.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ops.errors import OpsError

KEY_NAME = "BACKUP_KEY"
ENCRYPT_NAME = "BACKUP_ENCRYPT"
MAC_MEMBER = "manifest.json.hmac"
ENCRYPTION = "aes-256-gcm/1MiB"  # what the manifest records for encrypted archives
MAGIC = b"MIGCM1"
PREFIX_BYTES = 8
HEADER = len(MAGIC) + PREFIX_BYTES
CHUNK = 1024 * 1024
TAG = 16
TRUST_FLAG = "--trust-unsigned"


class SealError(Exception):
    """The archive's MAC or encryption does not check out; the message says what to do."""


@dataclass(frozen=True)
class BackupKey:
    mac_key: bytes
    enc_key: bytes
    key_id: str

    @classmethod
    def from_secret(cls, secret: str) -> BackupKey:
        def derive(purpose: bytes) -> bytes:
            kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
            return kdf.derive(secret.encode())

        mac_key = derive(b"mi-backup/1 mac")
        key_id = hmac.new(mac_key, b"mi-backup/1 key id", hashlib.sha256).hexdigest()[:16]
        return cls(mac_key, derive(b"mi-backup/1 encryption"), key_id)

    def mac_line(self, manifest: bytes) -> bytes:
        digest = hmac.new(self.mac_key, manifest, hashlib.sha256).hexdigest()
        return f"hmac-sha256 {self.key_id} {digest}\n".encode()


def key_from(values: Mapping[str, str], where: str) -> BackupKey:
    """The deployment's backup key from its settings; a missing or weak one says what to do."""
    from ops.env import schema

    secret = values.get(KEY_NAME, "")
    if secret.lower() in schema.PLACEHOLDERS or len(secret) < schema.MIN_SECRET_LENGTH:
        state = "is not set" if not secret else "is a placeholder or too short"
        raise OpsError(
            f"{KEY_NAME} {state} in {where}: backups are signed (and optionally encrypted) with it",
            f"`inv env.setup --env <env>` adds a generated one and keeps your other values "
            f"(in a cluster: add {KEY_NAME} to the Secret); keep a copy somewhere safe",
            code=2,
        )
    return BackupKey.from_secret(secret)


def encrypt_wanted(values: Mapping[str, str]) -> bool:
    return values.get(ENCRYPT_NAME, "false").strip().lower() in {"1", "true", "yes", "on"}


# --- authentication ---------------------------------------------------------------------------


def check_mac(manifest: bytes, line: bytes | None, key: BackupKey | None, *, trust: bool) -> None:
    """Raise SealError unless `line` is this deployment's MAC of `manifest` (or `trust`)."""
    if trust:
        return
    if line is None:
        raise SealError(
            f"it carries no MAC ({MAC_MEMBER}): it was made before backups were signed, or "
            f"not by `inv backup`. If you know where it comes from, add {TRUST_FLAG}"
        )
    if key is None:
        raise SealError(
            f"there is no {KEY_NAME} to check its MAC with: give --env of the deployment that "
            f"made it (its .env file holds the key), or add {TRUST_FLAG} if you trust it"
        )
    fields = line.decode(errors="replace").split()
    if len(fields) != 3 or fields[0] != "hmac-sha256":
        raise SealError(f"its {MAC_MEMBER} is malformed: the archive was altered")
    if fields[1] != key.key_id:
        raise SealError(
            f"it was signed with another {KEY_NAME} (key id {fields[1]}, this deployment's is "
            f"{key.key_id}): another deployment made it, or the key changed since. Use the "
            f"{KEY_NAME} that made it, or add {TRUST_FLAG} if you trust it"
        )
    if not hmac.compare_digest(key.mac_line(manifest), line):
        raise SealError(
            "its MAC does not match its manifest: the archive was altered after it was made. "
            "Restore another backup"
        )


# --- encryption -------------------------------------------------------------------------------


def encrypted_size(size: int) -> int:
    chunks = max(1, -(-size // CHUNK))
    return HEADER + size + chunks * TAG


def _aad(member: str, index: int, last: bool) -> bytes:
    return member.encode() + b"\0" + struct.pack(">Q?", index, last)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


class EncryptingReader(io.RawIOBase):
    """Reads as the encrypted form of `size` bytes of `raw` (what tarfile copies into the
    archive); `read(n)` returns exactly n bytes until the end, as tarfile expects."""

    def __init__(
        self, raw: IO[bytes] | io.RawIOBase, size: int, key: BackupKey, member: str
    ) -> None:
        self.raw = raw
        self.left = size
        self.aead = AESGCM(key.enc_key)
        self.member = member
        self.prefix = os.urandom(PREFIX_BYTES)
        self.index = 0
        self.buffer = bytearray(MAGIC + self.prefix)
        self.done = False

    def readable(self) -> bool:
        return True

    def _more(self) -> None:
        want = min(CHUNK, self.left)
        data = self.raw.read(want)
        if len(data) != want:
            raise OSError(f"{self.member} shrank while being archived")
        self.left -= want
        last = self.left == 0
        sealed = self.aead.encrypt(
            _nonce(self.prefix, self.index), data, _aad(self.member, self.index, last)
        )
        self.buffer += sealed
        self.index += 1
        self.done = last

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self.buffer) < size) and not self.done:
            self._more()
        size = len(self.buffer) if size < 0 else min(size, len(self.buffer))
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out


def decrypt_stream(
    source: IO[bytes], stored: int, key: BackupKey | None, member: str
) -> io.BufferedIOBase:
    """The plaintext of an encrypted part of `stored` bytes, chunk by chunk; SealError when a
    chunk's tag fails (altered, or another key) or there is no key."""
    if key is None:
        raise SealError(f"{member} is encrypted and there is no {KEY_NAME} to read it with")
    header = source.read(HEADER)
    if len(header) != HEADER or not header.startswith(MAGIC):
        raise SealError(f"{member} is not an encrypted part")
    return _Decrypting(source, stored - HEADER, key, member, header[len(MAGIC) :])


class _Decrypting(io.BufferedIOBase):
    def __init__(
        self, source: IO[bytes], left: int, key: BackupKey, member: str, prefix: bytes
    ) -> None:
        self.source = source
        self.left = left
        self.aead = AESGCM(key.enc_key)
        self.member = member
        self.prefix = prefix
        self.index = 0

    def read(self, size: int | None = -1) -> bytes:
        """One chunk's plaintext per call (b"" at the end), whatever `size` asks."""
        if self.left <= 0:
            return b""
        take = min(CHUNK + TAG, self.left)
        sealed = self.source.read(take)
        if len(sealed) != take or take < TAG:
            raise SealError(f"{self.member} is cut short")
        self.left -= take
        last = self.left == 0
        try:
            data = self.aead.decrypt(
                _nonce(self.prefix, self.index), sealed, _aad(self.member, self.index, last)
            )
        except InvalidTag:
            raise SealError(
                f"{self.member} does not decrypt with this deployment's {KEY_NAME}: it was "
                "altered, or another key encrypted it"
            ) from None
        self.index += 1
        return data


def is_encrypted(head: bytes) -> bool:
    return head.startswith(MAGIC)
