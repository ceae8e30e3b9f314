"""Recordings as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, GCS's S3 API,
rclone serve s3, ...), through boto3.

Uploads stream: up to one part (PART_SIZE) is held in memory, then sent as a multipart part;
a recording smaller than a part is one PUT. Nothing is visible under a name until the upload
completes, and an aborted upload leaves nothing behind (AbortMultipartUpload). Every failure
is translated into a StoreError that names the cause (endpoint, credentials, bucket,
permission) and the setting to fix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from recordings.base import (
    CHUNK,
    Readable,
    RecordingInfo,
    RecordingMissingError,
    StoreError,
    StoreKind,
    StoreUnavailableError,
    safe_name,
)

S3Client = Any  # boto3 builds its clients at run time; there is no class to name
AWS_ERRORS = (BotoCoreError, ClientError)
"""What a request can fail with. Never a bare Exception: Celery's soft time limit is raised
inside whatever runs, and must not be mistaken for an unavailable store."""

PART_SIZE = 8 * 1024 * 1024
"""Multipart part size: S3 needs at least 5 MiB (but the last); 10,000 parts cover 78 GiB."""
PROBE_PREFIX = ".mi-probe/"
"""Where `check(write=True)` writes and deletes its test object; never listed as a recording."""


@dataclass(frozen=True)
class S3Location:
    endpoint_url: str
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str
    path_style: bool = True
    prefix: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 3

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {self.endpoint_url or 'AWS S3'}"


_clients: dict[tuple[S3Location, int], S3Client] = {}
_clients_lock = threading.Lock()


def client_for(location: S3Location) -> S3Client:
    """One client per location and process: building one costs ~0.1 s of model loading, a
    client is thread-safe, and a forked process must not share its parent's connections."""
    ident = (location, os.getpid())
    with _clients_lock:
        if ident not in _clients:
            _clients[ident] = make_client(location)
        return _clients[ident]


def make_client(location: S3Location) -> S3Client:
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=location.region,
        s3={"addressing_style": "path" if location.path_style else "virtual"},
        connect_timeout=location.connect_timeout,
        read_timeout=location.read_timeout,
        # Standard mode retries throttling and 5xx with backoff; kept low so an outage turns
        # into a clear 503 within seconds instead of a hanging upload.
        retries={"max_attempts": location.max_attempts, "mode": "standard"},
        # botocore's default CRC trailers (aws-chunked bodies) are refused by many
        # S3-compatible servers; SigV4 already covers every byte's integrity in transit.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=20,
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=location.endpoint_url or None,
        aws_access_key_id=location.access_key_id or None,
        aws_secret_access_key=location.secret_access_key or None,
        config=config,
    )


# --- errors: which cause, which setting ------------------------------------------------------


def translate(exc: BaseException, location: S3Location, action: str, name: str = "") -> StoreError:
    """The StoreError that says what `exc` means for `action` (a verb: "read", "write"...)."""
    where = location.describe()
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = str(error.get("Message", "")) or code
        if code in {"NoSuchKey", "NotFound"} or (status == 404 and name and code != "NoSuchBucket"):
            return RecordingMissingError(
                f"the recording {name} is not in {where}",
                "it was deleted outside the app: restore it from a backup "
                "(`inv backup.restore`) or upload it again",
            )
        if code == "NoSuchBucket" or (status == 404 and not name):
            return StoreUnavailableError(
                f"the bucket {location.bucket!r} does not exist at "
                f"{location.endpoint_url or 'AWS S3'}",
                "create it (e.g. `aws s3 mb s3://BUCKET --endpoint-url URL`) or fix S3_BUCKET",
            )
        if code == "InvalidAccessKeyId":
            return StoreUnavailableError(
                f"the object store does not know the access key S3_ACCESS_KEY_ID ({where})",
                "set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY to a key pair of that store",
            )
        if code == "SignatureDoesNotMatch":
            return StoreUnavailableError(
                f"S3_SECRET_ACCESS_KEY is not the secret of S3_ACCESS_KEY_ID ({where})",
                "set the secret that belongs to that access key",
            )
        if code in {"AccessDenied", "AllAccessDisabled", "Forbidden"} or status == 403:
            return StoreUnavailableError(
                f"the object store denies this key permission to {action} in {where} "
                f"({code or status})",
                "grant its key s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject "
                "on the bucket (or check S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY)",
            )
        return StoreUnavailableError(
            f"the object store failed to {action} ({where}): {code or status} {message}",
            "retry later; `inv health` shows whether the store answers",
        )
    if isinstance(exc, BotoCoreError):
        return StoreUnavailableError(
            f"the object store at {location.endpoint_url or 'AWS S3'} does not answer "
            f"({type(exc).__name__}: {exc})",
            "check S3_ENDPOINT_URL and that the store is up (`inv health`)",
        )
    return StoreUnavailableError(f"the object store failed to {action} ({where}): {exc}")


# --- writing ---------------------------------------------------------------------------------


class S3Writer:
    def __init__(self, store: S3Bucket, name: str) -> None:
        self.name = name
        self.size = 0
        self._store = store
        self._key = store.key(name)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        self.size += len(chunk)
        while len(self._buffer) >= PART_SIZE:
            part = bytes(self._buffer[:PART_SIZE])
            del self._buffer[:PART_SIZE]
            self._send_part(part)

    def _send_part(self, data: bytes) -> None:
        client, bucket = self._store.client, self._store.location.bucket
        try:
            if self._upload_id is None:
                started = client.create_multipart_upload(Bucket=bucket, Key=self._key)
                self._upload_id = str(started["UploadId"])
            number = len(self._parts) + 1
            sent = client.upload_part(
                Bucket=bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=data
            )
        except AWS_ERRORS as exc:
            raise translate(exc, self._store.location, "write") from None
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def commit(self) -> None:
        client, bucket = self._store.client, self._store.location.bucket
        try:
            if self._upload_id is None:
                client.put_object(Bucket=bucket, Key=self._key, Body=bytes(self._buffer))
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
                self._upload_id = None
        except StoreError:
            raise
        except AWS_ERRORS as exc:
            raise translate(exc, self._store.location, "write") from None
        finally:
            self._buffer.clear()

    def abort(self) -> None:
        self._buffer.clear()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        # Unfinished parts cost storage until aborted; an unreachable store keeps them, and a
        # bucket lifecycle rule (AbortIncompleteMultipartUpload) is the backstop.
        with contextlib.suppress(*AWS_ERRORS):
            self._store.client.abort_multipart_upload(
                Bucket=self._store.location.bucket, Key=self._key, UploadId=upload_id
            )


# --- the store -------------------------------------------------------------------------------


class S3Bucket:
    kind: StoreKind = "s3"

    def __init__(self, location: S3Location) -> None:
        self.location = location

    @property
    def client(self) -> S3Client:
        # Built on first use: importing boto3 costs ~0.3 s, and forked workers need their own.
        return client_for(self.location)

    def describe(self) -> str:
        return self.location.describe()

    def key(self, name: str) -> str:
        if not safe_name(name):
            raise RecordingMissingError(f"{name!r} is not a recording name")
        return self.location.prefix + name

    def create(self, name: str) -> S3Writer:
        return S3Writer(self, name)

    def stat(self, name: str) -> RecordingInfo:
        try:
            head = self.client.head_object(Bucket=self.location.bucket, Key=self.key(name))
        except RecordingMissingError:
            raise
        except AWS_ERRORS as exc:
            raise translate(exc, self.location, "read", name) from None
        modified = head["LastModified"].astimezone(UTC)  # botocore's tzutc is no datetime.UTC
        return RecordingInfo(name, int(head["ContentLength"]), modified, str(head.get("ETag", "")))

    def open(self, name: str, start: int = 0, end: int | None = None) -> Readable:
        extra: dict[str, str] = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            got = self.client.get_object(Bucket=self.location.bucket, Key=self.key(name), **extra)
        except RecordingMissingError:
            raise
        except AWS_ERRORS as exc:
            raise translate(exc, self.location, "read", name) from None
        body: Readable = got["Body"]
        return body

    @contextlib.contextmanager
    def fetch(self, name: str, scratch: Path) -> Iterator[Path]:
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="recording-", dir=scratch) as tmp:
            target = Path(tmp) / name
            body = self.open(name)
            try:
                with target.open("xb") as out:
                    while chunk := body.read(CHUNK):
                        out.write(chunk)
            except StoreError:
                raise
            except AWS_ERRORS as exc:
                raise translate(exc, self.location, "read", name) from None
            finally:
                body.close()
            yield target

    def local_path(self, name: str) -> Path | None:
        return None

    def delete(self, name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.location.bucket, Key=self.key(name))
        except AWS_ERRORS as exc:
            raise translate(exc, self.location, "delete", name) from None

    def names(self) -> Iterator[str]:
        for key in self.keys(self.location.prefix, delimiter="/"):
            name = key[len(self.location.prefix) :]
            if safe_name(name):
                yield name

    def keys(self, prefix: str, *, delimiter: str = "") -> Iterator[str]:
        """Every key under `prefix` (only the top level with `delimiter="/"`)."""
        paginator = self.client.get_paginator("list_objects_v2")
        extra = {"Delimiter": delimiter} if delimiter else {}
        try:
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix, **extra):
                for item in page.get("Contents", []):
                    yield str(item["Key"])
        except AWS_ERRORS as exc:
            raise translate(exc, self.location, "list") from None

    def check(self, *, write: bool) -> str:
        bucket = self.location.bucket
        try:
            # A listing (not HeadBucket) because its error body names the cause: unknown key,
            # wrong secret, missing bucket, no permission.
            self.client.list_objects_v2(Bucket=bucket, Prefix=self.location.prefix, MaxKeys=1)
        except AWS_ERRORS as exc:
            raise translate(exc, self.location, "list recordings") from None
        if write:
            probe = f"{self.location.prefix}{PROBE_PREFIX}{uuid.uuid4().hex}"
            try:
                self.client.put_object(Bucket=bucket, Key=probe, Body=b"")
            except AWS_ERRORS as exc:
                raise translate(exc, self.location, "write") from None
            try:
                self.client.delete_object(Bucket=bucket, Key=probe)
            except AWS_ERRORS as exc:
                raise translate(exc, self.location, "delete") from None
        return self.describe()
